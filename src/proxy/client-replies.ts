// The core's own answers to a client it will not relay: an HTTP status then close, or a RST.
import type { Duplex } from 'node:stream';
import { refusalResponse } from './http/http-forward.js';
import { resetStream } from './connection-registry.js';

export function respondAndClose(client: Duplex, status: 403 | 502, body: string): void {
  client.on('error', () => {});
  client.resume(); // what the client sent is read and dropped
  if (status === 403) return void client.end(refusalResponse({ status, body }));
  client.end(`HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

/** Aborts the client's connection with a RST. */
export const resetClient = resetStream;
