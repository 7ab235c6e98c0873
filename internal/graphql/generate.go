package graphql

// The executor (exec_gen.go) and models (models_gen.go) are generated from the schema in
// api/graphql by gqlgen, a tool dependency in go.mod; scripts/check-generated.sh fails
// when they differ from what this produces.
//go:generate go tool gqlgen generate --config gqlgen.yml
