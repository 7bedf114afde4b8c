/**
 * The testee's messages (spec/testee.md §3): message `seq` carries a body cut from a fixed pattern and
 * an FNV-1a checksum, the same in every language, so a subscriber checks what any publisher sent.
 */

export interface Message {
  seq: bigint;
  body: Buffer;
  checksum: bigint;
}

const PATTERN = Buffer.alloc(4096);
for (let i = 0; i < 4096; i++) PATTERN[i] = ((i * 31) ^ (i >> 7)) & 0xff;

const MASK = (1n << 64n) - 1n;

/** The body of message `seq`: 0 to 2000 bytes, cut from the pattern at an offset that depends on `seq`. */
export function body(seq: bigint): Buffer {
  const len = Number(((seq * 2654435761n) & MASK) % 2001n);
  const start = Number(seq % 1999n);
  return PATTERN.subarray(start, start + len);
}

/** FNV-1a over `seq` and the body, 8 bytes at a time (the tail zero-padded), as a signed long. */
export function checksum(seq: bigint, data: Buffer): bigint {
  const prime = 0x100000001b3n;
  let hash = 0xcbf29ce484222325n;
  hash = ((hash ^ (seq & MASK)) * prime) & MASK;
  let i = 0;
  for (; i + 8 <= data.length; i += 8) hash = ((hash ^ data.readBigUInt64LE(i)) * prime) & MASK;
  const tail = Buffer.alloc(8);
  data.copy(tail, 0, i);
  hash = ((hash ^ tail.readBigUInt64LE(0)) * prime) & MASK;
  return BigInt.asIntN(64, hash);
}

export function message(seq: bigint): Message {
  const data = body(seq);
  return { seq, body: data, checksum: checksum(seq, data) };
}
