export {
  isMediaPath,
  MediaServer,
  type MediaServerOptions,
  type MediaSocketData,
  NATIVE_KEY_SUBPROTOCOL_PREFIX,
  NATIVE_SUBPROTOCOL,
} from './media-server.ts';
export { CloseCode } from './ws-transport.ts';
