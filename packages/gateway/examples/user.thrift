include "shared.thrift"

struct User {
  1: required i64 id
  2: string name
  3: shared.Status status = shared.Status.ACTIVE
}

service UserService extends shared.Base {
  User getUser(1: i64 id) throws (1: shared.NotFound notFound)
}
