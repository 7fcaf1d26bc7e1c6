import { MemoryStore } from '../../../core/store/index.ts';
import { manualTime, runStoreContract } from './store.contract.ts';

// TTLs and idle times run on a clock the tests move: no test waits on, or races, real time.
const time = manualTime();
runStoreContract('MemoryStore', async () => new MemoryStore({ now: time.now }), time);
