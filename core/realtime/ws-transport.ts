import type { ServerWebSocket } from 'bun';
import type { SessionTransport } from '../session/call-session.ts';
import type { OutboundFrame, WireCodec } from '../wire/frames.ts';
import type { ProtocolMetrics } from './metrics.ts';

/** Close codes (RFC 6455 §7.4.1) the media server uses. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  policy: 1008,
  tooBig: 1009,
  internal: 1011,
  tryAgainLater: 1013,
} as const;

/**
 * Frames out through the codec onto one Bun WebSocket, with every send result checked: -1
 * (backpressure) is counted and, once the client has left more than `maxBufferedBytes` unread,
 * the socket is closed with 1008 so a client that stops reading cannot grow our memory.
 */
export class WsTransport implements SessionTransport {
  private closed = false;

  constructor(
    private readonly ws: ServerWebSocket<unknown>,
    private readonly codec: WireCodec,
    private readonly metrics: ProtocolMetrics,
    private readonly maxBufferedBytes: number,
  ) {}

  send(frame: OutboundFrame): void {
    if (this.closed) return;
    const msg = this.codec.serialize(frame);
    if (msg === null) return;
    const result = this.ws.send(msg);
    if (result > 0) {
      this.metrics.framesOut++;
      return;
    }
    if (result === 0) {
      this.metrics.droppedSendFailed++;
      return;
    }
    this.metrics.framesOut++;
    this.metrics.backpressure++;
    if (this.ws.getBufferedAmount() > this.maxBufferedBytes) {
      this.metrics.closedSlow++;
      this.close(1008, 'client not reading');
    }
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(code, reason);
  }

  /** The socket closed from the other side: stop sending. */
  markClosed(): void {
    this.closed = true;
  }
}
