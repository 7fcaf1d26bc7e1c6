/** Call concurrency leases (global, campaign, agent) over the Store, and their renewal loop. */
export {
  type AdmitOptions,
  type AdmitResult,
  CallCapacity,
  type CapacityCounts,
  type CapacityLimits,
  type CapacityScope,
  type CountsQuery,
  type CountTarget,
  type Usage,
} from './call-capacity.ts';
export { type KeepAliveOptions, keepLeasesAlive, type LeaseKeeper } from './lease-keeper.ts';
