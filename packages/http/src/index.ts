/** @loch/http: HTTP/1.1 codec, server core and client on the Loch runtime. */
export {};
