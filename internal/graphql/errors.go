package graphql

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"plaza/internal/plaza"
)

// CodeOf maps the error vocabulary to GraphQL's extensions.code (docs/contracts.md), the
// one place that does so.
func CodeOf(code plaza.ErrorCode) string {
	switch code {
	case plaza.EBadRequest:
		return "BAD_REQUEST"
	case plaza.EInvalid:
		return "BAD_USER_INPUT"
	case plaza.EUnauthenticated:
		return "UNAUTHENTICATED"
	case plaza.EForbidden:
		return "FORBIDDEN"
	case plaza.ENotFound:
		return "NOT_FOUND"
	case plaza.EConflict:
		return "CONFLICT"
	case plaza.EPreconditionFailed:
		return "PRECONDITION_FAILED"
	case plaza.ETooLarge:
		return "TOO_LARGE"
	case plaza.ERateLimited:
		return "RATE_LIMITED"
	case plaza.EUnavailable:
		return "UNAVAILABLE"
	default:
		return "INTERNAL"
	}
}

// domainErrors turns whatever a resolver returns into a *plaza.Error: a cause the
// services did not classify is internal, logged with its details here and never sent.
// Field names in the services' field errors are renamed to the GraphQL argument paths the
// client wrote (price_cents → input.priceCents, cursor → after).
func (s *Server) domainErrors(ctx context.Context, next gql.Resolver) (any, error) {
	res, err := next(ctx)
	if err == nil {
		return res, nil
	}
	var pe *plaza.Error
	if !errors.As(err, &pe) {
		var ge *gqlerror.Error
		if errors.As(err, &ge) {
			return res, err // gqlgen's own (argument coercion, null checks)
		}
		pe = plaza.AsError(err)
	}
	if pe.Code == plaza.EInternal || pe.Code == plaza.EUnavailable {
		s.log.WarnContext(ctx, "graphql resolver failed", "code", pe.Code, "err", err, "path", gql.GetPath(ctx).String())
	}
	if fc := gql.GetFieldContext(ctx); fc != nil && fc.Field.Definition != nil && len(pe.Fields) > 0 {
		renamed := *pe
		renamed.Fields = make([]plaza.FieldError, len(pe.Fields))
		for i, f := range pe.Fields {
			renamed.Fields[i] = plaza.FieldError{Field: argumentPath(fc.Field.Definition, f.Field), Message: f.Message}
		}
		pe = &renamed
	}
	return res, pe
}

// argumentPath is where a service's field name sits among a field's arguments: an argument
// of its own name, else inside the input or filter object; a page's limit and cursor are
// first/last and after/before.
func argumentPath(def *ast.FieldDefinition, field string) string {
	name := camel(field)
	switch name {
	case "limit":
		name = pick(def, "first", "last")
	case "cursor":
		name = pick(def, "after", "before")
	}
	if def.Arguments.ForName(name) != nil {
		return name
	}
	for _, container := range []string{"input", "filter"} {
		if def.Arguments.ForName(container) != nil {
			return container + "." + name
		}
	}
	return name
}

func pick(def *ast.FieldDefinition, names ...string) string {
	for _, n := range names {
		if def.Arguments.ForName(n) != nil {
			return n
		}
	}
	return names[0]
}

// camel turns a snake_case field name into camelCase.
func camel(s string) string {
	parts := strings.Split(s, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// present writes an error for the client: a *plaza.Error shows its client-safe message,
// extensions.code, field errors for BAD_USER_INPUT and retryAfter seconds where it has
// one; an internal one only says so. gqlgen's own errors (parse, validation, limits) keep
// their message and code.
func (s *Server) present(ctx context.Context, err error) *gqlerror.Error {
	out := gql.DefaultErrorPresenter(ctx, err)
	var pe *plaza.Error
	if !errors.As(err, &pe) {
		if out.Extensions == nil || out.Extensions["code"] == nil {
			if out.Extensions == nil {
				out.Extensions = map[string]any{}
			}
			out.Extensions["code"] = "BAD_REQUEST"
		}
		return out
	}
	out.Message = pe.Message
	if pe.Code == plaza.EInternal {
		out.Message = "an internal error occurred"
	}
	ext := map[string]any{"code": CodeOf(pe.Code)}
	if len(pe.Fields) > 0 {
		ext["fields"] = pe.Fields
	}
	if pe.RetryAfter > 0 {
		ext["retryAfter"] = int(math.Ceil(pe.RetryAfter.Seconds()))
	}
	out.Extensions = ext
	out.Err = nil // the cause stays in the log
	return out
}

// recoverPanic turns a resolver's panic into an internal error, with the panic in the log.
func (s *Server) recoverPanic(ctx context.Context, v any) error {
	s.log.ErrorContext(ctx, "graphql resolver panicked", "panic", fmt.Sprint(v), "path", gql.GetPath(ctx).String())
	return plaza.Errorf(plaza.EInternal, "internal error")
}
