// The IDL of config/gateway.toml's example routes.
exception NotFound {
  1: string what
}

struct User {
  1: required i64 id
  2: string name
  3: optional list<string> tags
}

service UserService {
  User getUser(1: i64 id) throws (1: NotFound notFound)
  User createUser(1: User user)
  void deleteUser(1: i64 id)
}
