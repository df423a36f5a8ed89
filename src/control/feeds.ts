// The API's live feeds (connections, traffic, memory, logs): each is sent
// over a WebSocket when the client upgrades (as the dashboards do, on the
// same path), or else as chunked HTTP, one JSON object a line. A client that
// reads too slowly misses updates instead of making the gateway buffer them.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';

/** Starts sending with `send`; returns how to stop. */
export type Feed = (send: (message: unknown) => void) => () => void;

/** Bytes a slow client may have queued before updates are skipped. */
const MAX_QUEUED = 1 << 20;

/** Repeats `produce` every intervalMs (the first at once); messages produced after the stop are dropped. */
export function periodic(intervalMs: number, produce: () => unknown): Feed {
  return (send) => {
    let stopped = false;
    const tick = async () => {
      const m = await produce();
      if (!stopped) send(m);
    };
    void tick();
    const timer = setInterval(() => void tick(), intervalMs);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  };
}

export function feedOverWebSocket(ws: WebSocket, feed: Feed): void {
  const stop = feed((m) => {
    if (ws.readyState === ws.OPEN && ws.bufferedAmount < MAX_QUEUED) ws.send(JSON.stringify(m));
  });
  ws.on('close', stop);
  ws.on('error', stop);
  // a client's messages mean nothing here
  ws.on('message', () => {});
}

export function feedOverHttp(req: IncomingMessage, res: ServerResponse, feed: Feed, headers: Record<string, string> = {}): void {
  res.writeHead(200, { ...headers, 'content-type': 'application/json', 'cache-control': 'no-store' });
  let blocked = false;
  res.on('drain', () => (blocked = false));
  const stop = feed((m) => {
    if (blocked || res.writableLength > MAX_QUEUED) return;
    blocked = !res.write(JSON.stringify(m) + '\n');
  });
  req.socket.on('close', stop);
}
