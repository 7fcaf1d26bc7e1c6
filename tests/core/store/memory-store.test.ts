import { MemoryStore } from '../../../core/store/index.ts';
import { runStoreContract } from './store.contract.ts';

runStoreContract('MemoryStore', async () => new MemoryStore());
