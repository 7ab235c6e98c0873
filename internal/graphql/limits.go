package graphql

import (
	"context"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"plaza/internal/catalog"
	"plaza/internal/plaza"
)

// Codes of operations refused before execution. They are protocol errors: over HTTP the
// request is answered 400 (422 for application/json), like a document that does not
// validate, and nothing ran.
const (
	codeDepth      = "DEPTH_LIMIT_EXCEEDED"
	codeAliases    = "ALIAS_LIMIT_EXCEEDED"
	codeComplexity = "COMPLEXITY_LIMIT_EXCEEDED" // gqlgen's extension.ComplexityLimit
)

func init() {
	for _, c := range []string{codeDepth, codeAliases, codeComplexity} {
		errcode.RegisterErrorType(c, errcode.KindProtocol)
	}
}

// shapeLimit refuses operations nested deeper than maxDepth or with more than maxAliases
// aliased fields, after validation and before execution. Aliases are how one request asks
// for the same expensive field many times; depth is how it walks relations without end.
// (Batches of operations in one request are not accepted by the transports at all.)
type shapeLimit struct {
	maxDepth, maxAliases int
}

var _ interface {
	gql.HandlerExtension
	gql.OperationContextMutator
} = shapeLimit{}

func (shapeLimit) ExtensionName() string               { return "PlazaShapeLimit" }
func (shapeLimit) Validate(gql.ExecutableSchema) error { return nil }
func (l shapeLimit) MutateOperationContext(_ context.Context, oc *gql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	depth, aliases := measure(oc.Operation.SelectionSet, 0, map[string]bool{})
	if depth > l.maxDepth {
		err := gqlerror.Errorf("operation is nested %d levels deep, more than the %d allowed", depth, l.maxDepth)
		errcode.Set(err, codeDepth)
		return err
	}
	if aliases > l.maxAliases {
		err := gqlerror.Errorf("operation has %d aliased fields, more than the %d allowed", aliases, l.maxAliases)
		errcode.Set(err, codeAliases)
		return err
	}
	return nil
}

// measure returns the depth of set below level and its aliased fields, fragments unfolded
// (validation has ruled out fragment cycles; inFragment guards a spread repeated within
// its own path all the same).
func measure(set ast.SelectionSet, level int, inFragment map[string]bool) (depth, aliases int) {
	depth = level
	for _, sel := range set {
		var d, a int
		switch s := sel.(type) {
		case *ast.Field:
			d, a = measure(s.SelectionSet, level+1, inFragment)
			if s.Alias != "" && s.Alias != s.Name {
				a++
			}
		case *ast.InlineFragment:
			d, a = measure(s.SelectionSet, level, inFragment)
		case *ast.FragmentSpread:
			if s.Definition == nil || inFragment[s.Name] {
				continue
			}
			inFragment[s.Name] = true
			d, a = measure(s.Definition.SelectionSet, level, inFragment)
			delete(inFragment, s.Name)
		}
		depth = max(depth, d)
		aliases += a
	}
	return depth, aliases
}

// weigh sets the complexity of the fields that return many: a page costs its size times
// what each item asks for, so first: 100 is a hundred times first: 1.
func weigh(c *ComplexityRoot) {
	c.Query.Products = func(child int, _ *ProductFilter, _ *catalog.Sort, first *int64, _ *string) int {
		return 1 + pageSize(first)*child
	}
	c.Query.Users = func(child int, first *int64, _ *string) int { return 1 + pageSize(first)*child }
	c.Query.Messages = func(child int, _ string, last *int64, _ *string) int { return 1 + pageSize(last)*child }
	// Rooms and the category tree are short lists; count them as a page. The tree is one
	// cached read however deep it is asked for (the depth limit bounds the document), so
	// its levels are not multiplied again.
	c.Query.Rooms = func(child int) int { return 1 + plaza.DefaultLimit*child }
	c.Query.Categories = func(child int) int { return 1 + plaza.DefaultLimit*child }
}

// pageSize is the size a page argument asks for; the services refuse one out of range.
func pageSize(n *int64) int {
	if n == nil || *n < 1 {
		return plaza.DefaultLimit
	}
	return int(min(*n, plaza.MaxLimit))
}
