package redisx

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"plaza/internal/plaza"
)

// replyErr is what go-redis returns for an error reply from the server (redis.Error).
type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}

func TestErrClassifies(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		code plaza.ErrorCode
	}{
		{replyErr("WRONGTYPE Operation against a key holding the wrong kind of value"), plaza.EInternal},
		{errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"), plaza.EUnavailable},
		{fmt.Errorf("read: %w", context.DeadlineExceeded), plaza.EUnavailable},
	} {
		if got := plaza.ErrorCodeOf(Err(c.err, "cache")); got != c.code {
			t.Errorf("Err(%v) is %s, want %s", c.err, got, c.code)
		}
	}
	canceled := fmt.Errorf("get: %w", context.Canceled)
	if got := Err(canceled, "cache"); got != canceled {
		t.Errorf("a cancellation became %v; want it kept as it is", got)
	}
}
