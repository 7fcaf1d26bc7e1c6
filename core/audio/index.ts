/** The audio primitives of the realtime core: G.711, L16 helpers, resampling and frame pacing. */

export {
  bytesPerFrame,
  FrameClock,
  type FrameClockOptions,
  type FrameListener,
  samplesPerFrame,
  sharedFrameClock,
} from './frame-clock.ts';
export {
  ALAW_DECODE,
  alawToSample,
  decodeAlaw,
  decodeMulaw,
  encodeAlaw,
  encodeMulaw,
  MULAW_DECODE,
  mulawToSample,
  sampleToAlaw,
  sampleToMulaw,
} from './g711.ts';
export {
  decodeToPcm16,
  encodedByteLength,
  encodedSampleCount,
  encodeFromPcm16,
  Pcm16Reader,
  pcm16AsBytes,
} from './pcm16.ts';
export { MAX_PHASES, Resampler } from './resampler.ts';
