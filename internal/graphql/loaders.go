package graphql

import (
	"context"
	"time"

	"github.com/vikstrous/dataloadgen"

	"plaza/internal/plaza"
	"plaza/internal/users"
)

// loaders are the dataloaders of one operation: fields resolved concurrently (the authors
// of a page of messages) ask for their keys, and one store call answers them all. They live
// as long as the operation, so what one operation reads never leaks into another's.
type loaders struct {
	users *dataloadgen.Loader[string, *users.User]
}

type loadersKey struct{}

func withLoaders(ctx context.Context, svc Users, wait time.Duration) context.Context {
	fetch := func(ctx context.Context, ids []string) ([]*users.User, []error) {
		found, err := svc.GetMany(ctx, ids)
		if err != nil {
			return nil, []error{err}
		}
		byID := make(map[string]*users.User, len(found))
		for i := range found {
			byID[found[i].ID] = &found[i]
		}
		out := make([]*users.User, len(ids))
		for i, id := range ids {
			out[i] = byID[id] // nil: deleted since
		}
		return out, nil
	}
	l := &loaders{users: dataloadgen.NewLoader(fetch, dataloadgen.WithWait(wait), dataloadgen.WithBatchCapacity(plaza.MaxLimit))}
	return context.WithValue(ctx, loadersKey{}, l)
}

// userByID loads a user through the operation's loader; nil when there is none.
func userByID(ctx context.Context, id string) (*users.User, error) {
	l, _ := ctx.Value(loadersKey{}).(*loaders)
	return l.users.Load(ctx, id)
}
