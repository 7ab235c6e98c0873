package grpcapi

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"plaza/internal/plaza"
)

// TestToStatus: every code of the vocabulary gets the gRPC code of docs/contracts.md;
// field errors travel as BadRequest violations and waits as RetryInfo; the cause of an
// internal error is logged, never sent.
func TestToStatus(t *testing.T) {
	t.Parallel()
	want := map[plaza.ErrorCode]codes.Code{
		plaza.EBadRequest: codes.InvalidArgument, plaza.EInvalid: codes.InvalidArgument,
		plaza.EUnauthenticated: codes.Unauthenticated, plaza.EForbidden: codes.PermissionDenied,
		plaza.ENotFound: codes.NotFound, plaza.EConflict: codes.AlreadyExists,
		plaza.EPreconditionFailed: codes.FailedPrecondition, plaza.ETooLarge: codes.ResourceExhausted,
		plaza.ERateLimited: codes.ResourceExhausted, plaza.EUnavailable: codes.Unavailable, plaza.EInternal: codes.Internal,
	}
	ctx := context.Background()
	for code, grpcCode := range want {
		if got := status.Code(toStatus(ctx, slog.New(slog.DiscardHandler), plaza.Errorf(code, "x"))); got != grpcCode {
			t.Errorf("%s: %v, want %v", code, got, grpcCode)
		}
	}

	st := status.Convert(toStatus(ctx, slog.New(slog.DiscardHandler), plaza.Invalid(plaza.FieldError{Field: "name", Message: "must not be empty"})))
	br, ok := st.Details()[0].(*errdetails.BadRequest)
	if st.Code() != codes.InvalidArgument || !ok || br.GetFieldViolations()[0].GetField() != "name" || br.GetFieldViolations()[0].GetDescription() != "must not be empty" {
		t.Fatalf("field errors: %v %v", st, st.Details())
	}
	st = status.Convert(toStatus(ctx, slog.New(slog.DiscardHandler), &plaza.Error{Code: plaza.ERateLimited, Message: "slow down", RetryAfter: 3 * time.Second}))
	if ri, ok := st.Details()[0].(*errdetails.RetryInfo); !ok || ri.GetRetryDelay().AsDuration() != 3*time.Second {
		t.Fatalf("retry: %v", st.Details())
	}

	var log bytes.Buffer
	err := toStatus(ctx, slog.New(slog.NewJSONHandler(&log, nil)), errors.New("pq: password authentication failed for user plaza"))
	if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "pq:") || !strings.Contains(log.String(), "pq: password") {
		t.Fatalf("internal: %v; log %s", err, log.String())
	}

	dl, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	if got := status.Code(toStatus(dl, slog.New(slog.DiscardHandler), context.Canceled)); got != codes.DeadlineExceeded {
		t.Fatalf("cancelled past the deadline: %v", got)
	}
	if got := status.Code(toStatus(ctx, slog.New(slog.DiscardHandler), context.Canceled)); got != codes.Canceled {
		t.Fatalf("cancelled: %v", got)
	}
}
