/** One server-sent event: its `event` name (default `message`), its data lines joined, its id. */
export interface SseEvent {
  event: string;
  data: string;
  /** The last `id` the stream set, as the spec's last-event-ID buffer keeps it (null: none yet). */
  id: string | null;
}

/**
 * Incremental `text/event-stream` parsing, whatever the chunking: bytes in, each complete event
 * out (LF or CRLF line ends; comments and unknown fields ignored; an event with no data is not
 * dispatched). Used by the OpenAI adapter, the console's live streams and their tests.
 */
export class SseParser {
  private readonly decoder = new TextDecoder();
  private buffer = '';
  private name = 'message';
  private id: string | null = null;
  private data: string[] = [];
  /** Comment lines seen so far (a server's heartbeats). */
  comments = 0;

  push(bytes: Uint8Array): SseEvent[] {
    this.buffer += this.decoder.decode(bytes, { stream: true });
    return this.drain();
  }

  /** The end of the stream: an event left without its blank line still counts. */
  end(): SseEvent[] {
    this.buffer += `${this.decoder.decode()}\n\n`;
    return this.drain();
  }

  private drain(): SseEvent[] {
    const out: SseEvent[] = [];
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      if (line === '') {
        if (this.data.length > 0) out.push({ event: this.name, data: this.data.join('\n'), id: this.id });
        this.name = 'message';
        this.data = [];
        continue;
      }
      if (line.startsWith(':')) {
        this.comments++;
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(line[colon + 1] === ' ' ? colon + 2 : colon + 1);
      if (field === 'event') this.name = value;
      else if (field === 'data') this.data.push(value);
      else if (field === 'id') this.id = value;
    }
    return out;
  }
}
