namespace py user
include "shared.thrift"

typedef i64 UserId
typedef shared.Status Status

const i32 DEFAULT_AGE = 18

struct Address {
  1: required string city
  2: optional string zip
}

union Contact {
  1: string email
  2: string phone
}

struct User {
  1: required UserId id
  2: string name
  3: optional i32 age = DEFAULT_AGE
  4: Status status = shared.Status.ACTIVE
  5: optional list<Address> addresses
  6: optional set<string> tags
  7: optional map<i32, string> notes
  8: optional binary avatar
  9: optional double score
  10: optional bool admin
  11: optional byte level
  12: optional i16 rank
  13: optional Contact contact
  14: optional map<string, list<i64>> groups
  15: optional User manager
}

exception Invalid {
  1: string reason
  2: list<string> fields
}

struct GetUserReq {
  1: UserId id (api.path = "id")
  2: optional string fields (api.query = "fields")
  3: optional string trace (api.header = "X-Trace")
}

struct GetUserResp {
  1: i64 id
  2: string name (api.body = "userName")
  3: optional string etag (api.header = "ETag")
  4: optional i32 code (api.http_code = "")
  5: optional i64 version (api.header = "X-Version")
}

service UserService extends shared.Base {
  User getUser(1: UserId id) throws (1: shared.NotFound notFound)
  User createUser(1: User user) throws (1: Invalid invalid)
  void deleteUser(1: UserId id, 2: bool hard) throws (1: shared.NotFound notFound)
  oneway void touch(1: UserId id)
  list<User> search(1: string q, 2: i32 limit = 10, 3: list<Status> statuses)
  map<UserId, Status> statuses(1: set<UserId> ids)
  User getUserHz(1: GetUserReq req) (api.get = "/v2/users/:id")
  i64 echoI64(1: i64 v)
  string missing()
  GetUserResp getUserResp(1: GetUserReq req) (api.get = "/v3/users/:id")
}
