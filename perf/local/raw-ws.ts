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
  /** Bytes the kernel did not take yet; written on drain, before anything newer. */
  backlog: Uint8Array | null;
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
      backlog: null,
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
          s.data.rejectOpen?.(new Error('closed during handshake'));
          s.data.handlers.onClose?.();
        },
        error(s, err) {
          s.data.rejectOpen?.(err);
        },
        drain(s) {
          const rest = s.data.backlog;
          if (!rest) return;
          const n = s.write(rest);
          s.data.backlog = n < rest.length ? rest.subarray(n) : null;
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

  /** Queues one masked text frame (mask key 0: payload bytes unchanged). */
  sendText(text: string): void {
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
    // The 4 mask bytes stay 0.
    frame.set(payload, header);
    this.socket.data.pending.push(frame);
  }

  /** Writes every queued frame in one go (after any backlog the kernel has not taken yet). */
  flush(): void {
    const st = this.socket.data;
    const pending = st.pending;
    if (pending.length === 0) return;
    const total = pending.reduce((a, f) => a + f.length, 0) + (st.backlog?.length ?? 0);
    const all = new Uint8Array(total);
    let at = 0;
    if (st.backlog) {
      all.set(st.backlog, 0);
      at = st.backlog.length;
    }
    for (const f of pending) {
      all.set(f, at);
      at += f.length;
    }
    pending.length = 0;
    const n = this.socket.write(all);
    st.backlog = n < all.length ? all.subarray(n) : null;
  }

  /** Bytes queued behind a full socket buffer. */
  get backlogBytes(): number {
    return this.socket.data.backlog?.length ?? 0;
  }

  close(): void {
    this.socket.end();
  }
}
