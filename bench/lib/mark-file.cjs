/**
 * The mark file of the bench preloads (counts-preload, turns-preload, gc-ab-preload,
 * survivor-sites-preload, thrift's hooks-preload): the driving script writes a word to
 * <dir>/mark ("before", "after <requests>", a round name) and each loch thread reacts once per new
 * word. watchMark reads the file every `everyMs` (an unref'd interval, so it never keeps a thread
 * alive) and calls onMark(text) when its trimmed text differs from the last one seen; a missing or
 * unreadable file is no mark. `setIntervalFn` lets a preload that wraps the timers poll outside
 * its own wrapper.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function watchMark(dir, onMark, { everyMs = 50, setIntervalFn = setInterval } = {}) {
  const markFile = path.join(dir, 'mark');
  let last = '';
  const poll = setIntervalFn(() => {
    let text;
    try {
      text = fs.readFileSync(markFile, 'utf8').trim();
    } catch {
      return;
    }
    if (text === last) return;
    last = text;
    onMark(text);
  }, everyMs);
  poll.unref();
  return poll;
}

module.exports = { watchMark };
