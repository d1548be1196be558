struct Fine {
  1: i32 a
}

struct Broken {
  1: i32
}
