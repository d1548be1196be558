// The structs of the gateway benchmark: a small Item (~120 B of JSON) and one with 80
// entries (~10 KiB of JSON), echoed by the upstream.
struct Entry {
  1: i64 id
  2: string name
  3: double score
  4: bool active
  5: list<string> tags
}

struct Item {
  1: required i64 id
  2: string title
  3: i32 count
  4: optional list<Entry> entries
  5: optional map<string, string> attrs
}

service Bench {
  Item echo(1: Item item)
}
