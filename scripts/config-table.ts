/** Prints the README's configuration table from the settings table: `npm run docs:config`. */
import { configTableMarkdown } from '../core/config/index.ts';

console.log(configTableMarkdown());
