/**
 * In-ring TLS write progress without a crossing. The ring keeps each TLS conn's ciphertext sent
 * count (the bytes the kernel took of its records) in memory JavaScript reads: Float64Array pages
 * of TLS_SENT_PAGE entries that JavaScript makes and hands to the ring once each
 * (binding.tlsSentPage), conn id `id` at entry `id % TLS_SENT_PAGE` of page
 * `id / TLS_SENT_PAGE`. The ring sets an entry to 0 when it attaches a conn under that id (ids
 * are reused) and raises it at each send completion of the conn (Ring::PublishSent in
 * native/src/ring_tls.cc), so a stream's sentBytes, read at every arm of a write deadline
 * (@loch/http internal/write-progress.ts), costs a memory read where a call into the binding per
 * read made an HTTPS response cost one crossing more than a plain one (issue 13).
 *
 * An entry belongs to a stream from its attachTls until its close or tlsDetach, when the ring may
 * give the id to another conn: the stream stops reading it then (uring/stream.ts).
 */
import type { NativeBinding } from '@loch/native';

/** Conns per page, a power of two (kTlsSentPage in native/src/ring.h: keep the two in step). */
export const TLS_SENT_PAGE = 1024;

/** Where conn `id`'s count is in its page. */
export function tlsSentIndex(id: number): number {
  return id & (TLS_SENT_PAGE - 1);
}

/** Pages handed to each ring (a ring's pages are its own: a new ring starts with none). */
const pagesByRing = new WeakMap<object, (Float64Array | undefined)[]>();

/**
 * The page holding conn `id`'s sent count on `ring` (handed to the ring when first needed), or
 * undefined when the binding publishes no counts.
 */
export function tlsSentPage(binding: NativeBinding, ring: object, id: number): Float64Array | undefined {
  let pages = pagesByRing.get(ring);
  if (pages === undefined) pagesByRing.set(ring, (pages = []));
  const index = Math.floor(id / TLS_SENT_PAGE);
  let page = pages[index];
  if (page === undefined) {
    const made = new Float64Array(TLS_SENT_PAGE);
    if (binding.tlsSentPage?.(index, made) !== 0) return undefined;
    pages[index] = page = made;
  }
  return page;
}
