// The driver's own types: this directory is its source with the changes CHANGES.md lists.
import postgres from 'postgres';

export default postgres;
