#!/bin/sh
# Regenerates the binary FileDescriptorSets the gRPC pseudonymization tests read (protoc from
# Debian's protobuf-compiler; the .binpb files are committed so the tests need no protoc).
set -e
cd "$(dirname "$0")"
protoc --include_imports --descriptor_set_out=users.binpb users.proto
protoc --include_imports --descriptor_set_out=people.binpb people.proto
# Without its imports: a set the registry cannot resolve (a config error).
protoc --descriptor_set_out=people-no-imports.binpb people.proto
