/**
 * A minimal WebSocket client over Bun.connect, for load generation only: thousands of sockets
 * sending small text frames and counting what comes back, at a fraction of the cost of the
 * browser-style WebSocket (no event object per message). Client frames are masked as RFC 6455
 * requires (with an all-zero key, which leaves the payload as is); server frames are parsed
 * just enough to count text messages and hand their first bytes to a classifier.
 */
import type { Socket } from 'bun';

export interface RawWsHandlers {
  /** One complete text message from the server; `head` holds its first bytes (up to 32). */
  onText(head: Uint8Array, length: number): void;
  onClose?(): void;
}

interface State {
  handlers: RawWsHandlers;
  upgraded: boolean;
  buffer: Uint8Array;
  used: number;
  pending: Uint8Array[];
  /** Bytes the kernel did not take yet, oldest first; written on drain, before anything newer. */
  backlog: Uint8Array[];
  backlogBytes: number;
  closed: boolean;
  resolveOpen: (() => void) | null;
  rejectOpen: ((err: Error) => void) | null;
}

const encoder = new TextEncoder();

/** A connected raw client. `sendText` queues a frame; `flush` writes the queue in one syscall. */
export class RawWs {
  private constructor(private readonly socket: Socket<State>) {}

  static async connect(host: string, port: number, path: string, handlers: RawWsHandlers): Promise<RawWs> {
    let resolveOpen!: () => void;
    let rejectOpen!: (err: Error) => void;
    const opened = new Promise<void>((res, rej) => {
      resolveOpen = res;
      rejectOpen = rej;
    });
    const state: State = {
      handlers,
      upgraded: false,
      buffer: new Uint8Array(64 * 1024),
      used: 0,
      pending: [],
      backlog: [],
      backlogBytes: 0,
      closed: false,
      resolveOpen,
      rejectOpen,
    };
    const socket = await Bun.connect<State>({
      hostname: host,
      port,
      data: state,
      socket: {
        open(s) {
          s.write(
            `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
              'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
          );
        },
        data(s, chunk) {
          RawWs.onData(s.data, chunk);
        },
        close(s) {
          s.data.closed = true;
          s.data.rejectOpen?.(new Error('closed during handshake'));
          s.data.handlers.onClose?.();
        },
        error(s, err) {
          s.data.rejectOpen?.(err);
        },
        drain(s) {
          RawWs.writeBacklog(s);
        },
      },
    });
    await opened;
    return new RawWs(socket);
  }

  private static onData(st: State, chunk: Uint8Array): void {
    if (st.used + chunk.length > st.buffer.length) {
      const next = new Uint8Array(Math.max(st.buffer.length * 2, st.used + chunk.length));
      next.set(st.buffer.subarray(0, st.used));
      st.buffer = next;
    }
    st.buffer.set(chunk, st.used);
    st.used += chunk.length;
    let pos = 0;
    const buf = st.buffer;
    if (!st.upgraded) {
      const text = new TextDecoder().decode(buf.subarray(0, st.used));
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!text.startsWith('HTTP/1.1 101')) {
        st.rejectOpen?.(new Error(`upgrade refused: ${text.split('\r\n')[0]}`));
        st.rejectOpen = null;
        return;
      }
      st.upgraded = true;
      st.resolveOpen?.();
      st.resolveOpen = null;
      st.rejectOpen = null;
      pos = end + 4;
    }
    while (st.used - pos >= 2) {
      const opcode = buf[pos]! & 0x0f;
      let len = buf[pos + 1]! & 0x7f;
      let header = 2;
      if (len === 126) {
        if (st.used - pos < 4) break;
        len = (buf[pos + 2]! << 8) | buf[pos + 3]!;
        header = 4;
      } else if (len === 127) {
        if (st.used - pos < 10) break;
        len = Number(new DataView(buf.buffer, buf.byteOffset + pos + 2, 8).getBigUint64(0));
        header = 10;
      }
      if (st.used - pos < header + len) break;
      if (opcode === 1) st.handlers.onText(buf.subarray(pos + header, pos + header + Math.min(32, len)), len);
      pos += header + len;
    }
    if (pos > 0) {
      buf.copyWithin(0, pos, st.used);
      st.used -= pos;
    }
  }

  /**
   * A complete masked text frame for `text` (mask key 0: payload bytes unchanged), to keep and
   * send many times with `sendFrame`, patching payload bytes in place between sends.
   */
  static textFrame(text: string): { frame: Uint8Array; payloadOffset: number } {
    const payload = encoder.encode(text);
    const n = payload.length;
    const header = n < 126 ? 6 : 8;
    const frame = new Uint8Array(header + n);
    frame[0] = 0x81;
    if (n < 126) frame[1] = 0x80 | n;
    else {
      frame[1] = 0x80 | 126;
      frame[2] = n >> 8;
      frame[3] = n & 0xff;
    }
    frame.set(payload, header);
    return { frame, payloadOffset: header };
  }

  /** Writes as much of the backlog as the socket takes now. */
  private static writeBacklog(s: Socket<State>): void {
    const st = s.data;
    while (st.backlog.length > 0) {
      const chunk = st.backlog[0]!;
      const n = s.write(chunk);
      st.backlogBytes -= n;
      if (n < chunk.length) {
        st.backlog[0] = chunk.subarray(n);
        return;
      }
      st.backlog.shift();
    }
  }

  /** Writes a prebuilt frame now (the socket copies it), behind any backlog. */
  sendFrame(frame: Uint8Array): void {
    const st = this.socket.data;
    if (st.backlog.length > 0) {
      st.backlog.push(frame.slice());
      st.backlogBytes += frame.length;
      return;
    }
    const n = this.socket.write(frame);
    if (n < frame.length) {
      st.backlog.push(frame.slice(n));
      st.backlogBytes += frame.length - n;
    }
  }

  /** Queues one masked text frame (mask key 0: payload bytes unchanged); `flush` writes it. */
  sendText(text: string): void {
    this.socket.data.pending.push(RawWs.textFrame(text).frame);
  }

  /** Writes every queued frame, behind any backlog. */
  flush(): void {
    const pending = this.socket.data.pending;
    for (const f of pending) this.sendFrame(f);
    pending.length = 0;
  }

  /** Bytes queued behind a full socket buffer. */
  get backlogBytes(): number {
    return this.socket.data.backlogBytes;
  }

  get isClosed(): boolean {
    return this.socket.data.closed;
  }

  close(): void {
    this.socket.end();
  }
}
