package graphql

import (
	"context"
	"reflect"
	"strings"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// complexityLimit is gqlgen's FixedComplexityLimit that remembers what an operation weighs
// when the weight cannot change with its variables. gqlgen weighs every operation on every
// request (a walk of the document with an argument map per field), although the parsed
// document is cached; for most operations the answer is the same each time. Only a field
// with a complexity function of its own (weigh) reads arguments, so an operation that
// passes no variable to such a field weighs the same whatever its variables are. Weights
// over the limit are not remembered: those operations are weighed again and refused by
// gqlgen's extension, with its error.
type complexityLimit struct {
	limit   int
	gqlgen  *extension.ComplexityLimit
	weighed map[string]bool  // lower-case names of the fields with a complexity function
	known   *lru.LRU[weight] // by query text
}

// weight is what an operation of a document weighs; the pointer names the parsed document's
// operation, so a query parsed again (or another operation of it) is weighed again.
type weight struct {
	op         *ast.OperationDefinition
	complexity int
}

var _ interface {
	gql.HandlerExtension
	gql.OperationContextMutator
} = complexityLimit{}

func newComplexityLimit(limit int, c ComplexityRoot, size int) complexityLimit {
	return complexityLimit{limit: limit, gqlgen: extension.FixedComplexityLimit(limit), weighed: weighedFields(c), known: lru.New[weight](size)}
}

func (c complexityLimit) ExtensionName() string { return c.gqlgen.ExtensionName() }

func (c complexityLimit) Validate(es gql.ExecutableSchema) error { return c.gqlgen.Validate(es) }

func (c complexityLimit) MutateOperationContext(ctx context.Context, oc *gql.OperationContext) *gqlerror.Error {
	op := oc.Doc.Operations.ForName(oc.OperationName)
	if w, ok := c.known.Get(ctx, oc.RawQuery); ok && w.op == op && op != nil {
		oc.Stats.SetExtension(c.gqlgen.ExtensionName(), &extension.ComplexityStats{Complexity: w.complexity, ComplexityLimit: c.limit})
		return nil
	}
	if err := c.gqlgen.MutateOperationContext(ctx, oc); err != nil {
		return err
	}
	if stats, ok := oc.Stats.GetExtension(c.gqlgen.ExtensionName()).(*extension.ComplexityStats); ok && op != nil && !c.readsVariables(op.SelectionSet, map[string]bool{}) {
		c.known.Add(ctx, oc.RawQuery, weight{op: op, complexity: stats.Complexity})
	}
	return nil
}

// readsVariables reports whether a field with a complexity function of its own is passed
// a variable anywhere in set, fragments unfolded.
func (c complexityLimit) readsVariables(set ast.SelectionSet, inFragment map[string]bool) bool {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if c.weighed[strings.ToLower(s.Name)] {
				for _, arg := range s.Arguments {
					if hasVariable(arg.Value) {
						return true
					}
				}
			}
			if c.readsVariables(s.SelectionSet, inFragment) {
				return true
			}
		case *ast.InlineFragment:
			if c.readsVariables(s.SelectionSet, inFragment) {
				return true
			}
		case *ast.FragmentSpread:
			if s.Definition == nil || inFragment[s.Name] {
				continue
			}
			inFragment[s.Name] = true
			found := c.readsVariables(s.Definition.SelectionSet, inFragment)
			delete(inFragment, s.Name)
			if found {
				return true
			}
		}
	}
	return false
}

func hasVariable(v *ast.Value) bool {
	if v == nil {
		return false
	}
	if v.Kind == ast.Variable {
		return true
	}
	for _, child := range v.Children {
		if hasVariable(child.Value) {
			return true
		}
	}
	return false
}

// weighedFields names the fields weigh gave a complexity function (ComplexityRoot.Type.Field
// set), in lower case: the only ones whose weight depends on their arguments. Read from the
// struct, so a function added there is counted without a second list to keep.
func weighedFields(c ComplexityRoot) map[string]bool {
	names := map[string]bool{}
	types := reflect.ValueOf(c)
	for i := range types.NumField() {
		fields := types.Field(i)
		for j := range fields.NumField() {
			if f := fields.Field(j); f.Kind() == reflect.Func && !f.IsNil() {
				names[strings.ToLower(fields.Type().Field(j).Name)] = true
			}
		}
	}
	return names
}
