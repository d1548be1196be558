namespace py pii

struct Profile {
  1: string email (pii = "email")
  2: string name
  3: optional binary photo (pii = "bytes")
  4: optional list<string> phones (pii = "text", pii.domain = "phone")
  5: optional map<string, string> notes
  6: optional Profile friend
  7: i32 age
}

exception Denied {
  1: string who
}

service ProfileService {
  Profile get(1: string id) throws (1: Denied denied)
  list<Profile> find(1: string email, 2: map<string, Profile> byKey)
  void put(1: Profile p)
  oneway void ping(1: string note)
  i32 count(1: string q)
}

service Other {
  Profile get(1: string id)
}
