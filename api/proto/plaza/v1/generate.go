// Package plazav1 is the generated Go code of Plaza's gRPC API (package plaza.v1, the
// .proto files beside it). Never edit the *.pb.go files: change a .proto and run
// `make proto` (or go generate ./...), then commit both.
package plazav1

//go:generate bash ../../../../scripts/proto.sh generate
