package graphql

// Node is what node(id) returns: a catalog.Product or a users.User. The domain types know
// nothing of GraphQL, so the interface asks nothing of them; the executor tells them apart
// by their Go type.
type Node interface{}
