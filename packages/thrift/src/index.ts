/** @loch/thrift: Thrift binary and compact protocols, framed, THeader and TTHeader transports. */
export {};
