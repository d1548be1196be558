namespace py shared

enum Status {
  ACTIVE = 1,
  SUSPENDED = 2,
  DELETED = 10
}

exception NotFound {
  1: string what
  2: i64 id
}

service Base {
  string ping(1: string text)
}
