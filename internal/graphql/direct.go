package graphql

import (
	"bytes"
	"context"
	"strconv"
	"time"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"

	"plaza/internal/catalog"
)

// direct answers the commonest read, `query { product(id:) { … } }` asking only for fields
// stored on the product, without gqlgen's executor. The executor spends most of such a
// request on machinery per field (a field context, a middleware chain, a marshaler each)
// that stored fields do not need: here the product is read by the same resolver and each
// field written by gqlgen's own marshaler for its scalar, so the bytes are the executor's
// (TestDirectAnswersAsExecutor). The operation has passed everything before execution
// (parse, validation, APQ, the depth, alias and complexity limits, variables). Anything
// else, and any product that cannot be answered so (an error, a null), goes to the
// executor, which answers it as always; the resolver then runs once more.
//
// The operation and field middleware (the author loaders, domainErrors) do nothing for
// such an operation on success; an extension added later that must see every operation
// needs this path to step aside.
type direct struct {
	resolver *resolver
	plans    *lru.LRU[productPlan] // by query text
}

// productPlan is how direct answers one operation of a parsed document; nil fields: the
// operation is not one it answers.
type productPlan struct {
	op     *ast.OperationDefinition
	field  *ast.Field // product(id:)
	fields []storedField
}

type storedField struct {
	key   []byte // the response key as the executor writes it, and a colon
	write func(*bytes.Buffer, *catalog.Product) bool
}

// storedProductFields are Product's fields read from the struct (gqlgen.yml gives them no
// resolver; newDirect checks), each written as the executor's marshaler for its scalar
// writes it; false: the marshaler's answer is null (a zero time).
var storedProductFields = map[string]struct {
	write   func(*bytes.Buffer, *catalog.Product) bool
	context func(*executionContext, context.Context, gql.CollectedField) (*gql.FieldContext, error)
}{
	"id":          {func(b *bytes.Buffer, p *catalog.Product) bool { return marshal(b, gql.MarshalID(p.ID)) }, (*executionContext).fieldContext_Product_id},
	"name":        {func(b *bytes.Buffer, p *catalog.Product) bool { return marshal(b, gql.MarshalString(p.Name)) }, (*executionContext).fieldContext_Product_name},
	"description": {func(b *bytes.Buffer, p *catalog.Product) bool { return marshal(b, gql.MarshalString(p.Description)) }, (*executionContext).fieldContext_Product_description},
	"priceCents":  {func(b *bytes.Buffer, p *catalog.Product) bool { return writeInt(b, p.PriceCents) }, (*executionContext).fieldContext_Product_priceCents},
	"currency":    {func(b *bytes.Buffer, p *catalog.Product) bool { return marshal(b, gql.MarshalString(p.Currency)) }, (*executionContext).fieldContext_Product_currency},
	"category":    {func(b *bytes.Buffer, p *catalog.Product) bool { return marshal(b, gql.MarshalString(p.Category)) }, (*executionContext).fieldContext_Product_category},
	"subcategory": {func(b *bytes.Buffer, p *catalog.Product) bool { return marshal(b, gql.MarshalString(p.Subcategory)) }, (*executionContext).fieldContext_Product_subcategory},
	"stock":       {func(b *bytes.Buffer, p *catalog.Product) bool { return writeInt(b, p.Stock) }, (*executionContext).fieldContext_Product_stock},
	"version":     {func(b *bytes.Buffer, p *catalog.Product) bool { return writeInt(b, p.Version) }, (*executionContext).fieldContext_Product_version},
	"createdAt":   {func(b *bytes.Buffer, p *catalog.Product) bool { return writeTime(b, p.CreatedAt) }, (*executionContext).fieldContext_Product_createdAt},
	"updatedAt":   {func(b *bytes.Buffer, p *catalog.Product) bool { return writeTime(b, p.UpdatedAt) }, (*executionContext).fieldContext_Product_updatedAt},
}

func marshal(b *bytes.Buffer, m gql.Marshaler) bool {
	if m == gql.Null {
		return false
	}
	m.MarshalGQL(b)
	return true
}

// writeInt writes what gql.MarshalInt64 writes, without its allocations.
func writeInt(b *bytes.Buffer, n int64) bool {
	b.Write(strconv.AppendInt(b.AvailableBuffer(), n, 10))
	return true
}

// writeTime writes what gql.MarshalTime writes (null for the zero time, else the RFC 3339
// time quoted: nothing in it needs escaping), without its allocations.
func writeTime(b *bytes.Buffer, t time.Time) bool {
	if t.IsZero() {
		return false
	}
	out := append(b.AvailableBuffer(), '"')
	out = t.AppendFormat(out, time.RFC3339Nano)
	b.Write(append(out, '"'))
	return true
}

func newDirect(r *resolver) *direct {
	// A field the executor resolves by a method or resolver is not stored: direct would
	// read the struct where the executor calls code.
	for name, f := range storedProductFields {
		fc, err := f.context(nil, context.Background(), gql.CollectedField{Field: &ast.Field{Name: name}})
		if err != nil || fc.IsMethod || fc.IsResolver {
			panic("graphql: Product." + name + " is not a stored field")
		}
	}
	return &direct{resolver: r, plans: lru.New[productPlan](queryCacheSize)}
}

// answer writes the data of operation oc into buf and reports whether it did; when it did
// not, buf is as it was and the executor is to answer.
func (d *direct) answer(ctx context.Context, oc *gql.OperationContext, buf *bytes.Buffer) bool {
	plan := d.plan(ctx, oc)
	if plan.field == nil {
		return false
	}
	// The executor coerces other values to an ID; those are its to answer.
	v, err := plan.field.Arguments[0].Value.Value(oc.Variables)
	id, ok := v.(string)
	if err != nil || !ok {
		return false
	}
	p, err := d.resolver.product(ctx, id)
	if err != nil || p == nil {
		return false
	}
	start := buf.Len()
	buf.WriteByte('{')
	gql.MarshalString(plan.field.Alias).MarshalGQL(buf)
	buf.WriteString(":{")
	for i, f := range plan.fields {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(f.key)
		if !f.write(buf, p) { // null: the executor's error to answer
			buf.Truncate(start)
			return false
		}
	}
	buf.WriteString("}}")
	return true
}

// plan is how direct answers oc's operation, worked out once per parsed document.
func (d *direct) plan(ctx context.Context, oc *gql.OperationContext) productPlan {
	if p, ok := d.plans.Get(ctx, oc.RawQuery); ok && p.op == oc.Operation {
		return p
	}
	p := productPlan{op: oc.Operation}
	if field := productByID(oc.Operation); field != nil {
		if fields, ok := storedFields(field.SelectionSet); ok {
			p.field, p.fields = field, fields
		}
	}
	d.plans.Add(ctx, oc.RawQuery, p)
	return p
}

// productByID is the operation's one field when the operation is a query of product(id:)
// alone, without directives; else nil.
func productByID(op *ast.OperationDefinition) *ast.Field {
	if op == nil || op.Operation != ast.Query || len(op.Directives) > 0 || len(op.SelectionSet) != 1 {
		return nil
	}
	f, ok := op.SelectionSet[0].(*ast.Field)
	if !ok || f.Name != "product" || f.ObjectDefinition == nil || f.ObjectDefinition.Name != "Query" ||
		len(f.Directives) > 0 || len(f.Arguments) != 1 || f.Arguments[0].Name != "id" {
		return nil
	}
	return f
}

// storedFields are the fields of set when every one is a stored Product field, asked for
// once, without arguments, directives or fragments.
func storedFields(set ast.SelectionSet) ([]storedField, bool) {
	out := make([]storedField, 0, len(set))
	seen := map[string]bool{}
	for _, sel := range set {
		f, ok := sel.(*ast.Field)
		if !ok || len(f.Directives) > 0 || len(f.Arguments) > 0 || len(f.SelectionSet) > 0 || seen[f.Alias] {
			return nil, false
		}
		stored, ok := storedProductFields[f.Name]
		if !ok {
			return nil, false
		}
		seen[f.Alias] = true
		var key bytes.Buffer
		gql.MarshalString(f.Alias).MarshalGQL(&key)
		key.WriteByte(':')
		out = append(out, storedField{key: key.Bytes(), write: stored.write})
	}
	return out, len(out) > 0
}
