package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"plaza/internal/plaza"
)

// CodeOf maps the error vocabulary to gRPC, the one place that does so (the gRPC column
// of docs/contracts.md).
func CodeOf(code plaza.ErrorCode) codes.Code {
	switch code {
	case plaza.EBadRequest, plaza.EInvalid:
		return codes.InvalidArgument
	case plaza.EUnauthenticated:
		return codes.Unauthenticated
	case plaza.EForbidden:
		return codes.PermissionDenied
	case plaza.ENotFound:
		return codes.NotFound
	case plaza.EConflict:
		return codes.AlreadyExists
	case plaza.EPreconditionFailed:
		return codes.FailedPrecondition
	case plaza.ETooLarge, plaza.ERateLimited:
		return codes.ResourceExhausted
	case plaza.EUnavailable:
		return codes.Unavailable
	default:
		return codes.Internal
	}
}

// toStatus turns what a handler returned into the status the client gets. Field errors
// travel as BadRequest field violations and a wait as RetryInfo; the cause of an internal
// or unavailable error goes to the log with the request ID and never to the client.
// Errors that are statuses already (the transport's own) and the context's end pass as
// they are.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var pe *plaza.Error
	if !errors.As(err, &pe) {
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled) && deadlinePassed(ctx):
			// A client whose deadline passes also resets the stream, which can reach the
			// server before its own timer: the call still ended because of the deadline.
			return status.Error(codes.DeadlineExceeded, "the deadline passed before the call finished")
		case errors.Is(err, context.Canceled):
			return status.Error(codes.Canceled, "the call was cancelled")
		}
		if _, ok := status.FromError(err); ok {
			return err
		}
		pe = plaza.AsError(err)
	}
	if pe.Err != nil && ctx.Err() != nil && errors.Is(pe.Err, ctx.Err()) {
		// A service that gave up because the deadline passed, or the client left.
		return toStatus(ctx, log, ctx.Err())
	}
	msg := pe.Message
	switch pe.Code {
	case plaza.EBadRequest, plaza.EInvalid, plaza.EUnauthenticated, plaza.EForbidden, plaza.ENotFound,
		plaza.EConflict, plaza.EPreconditionFailed, plaza.ETooLarge, plaza.ERateLimited:
	case plaza.EUnavailable:
		if pe.Err != nil { // a dependency failed; a stream ended by a drain has no cause
			log.WarnContext(ctx, "dependency unavailable", "err", err, "request_id", RequestIDFrom(ctx))
		}
	default:
		log.ErrorContext(ctx, "internal error", "err", err, "request_id", RequestIDFrom(ctx))
		msg = "an internal error occurred; quote the request ID when reporting it"
	}
	st := status.New(CodeOf(pe.Code), msg)
	var details []*errdetails.BadRequest_FieldViolation
	for _, f := range pe.Fields {
		details = append(details, &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Message})
	}
	switch {
	case len(details) > 0:
		st = withDetails(st, &errdetails.BadRequest{FieldViolations: details})
	case pe.RetryAfter > 0:
		st = withDetails(st, &errdetails.RetryInfo{RetryDelay: durationpb.New(pe.RetryAfter)})
	}
	return st.Err()
}

func deadlinePassed(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// withDetails adds d to st; a detail that cannot be encoded is left out rather than
// failing the answer.
func withDetails(st *status.Status, d protoadapt.MessageV1) *status.Status {
	if ds, err := st.WithDetails(d); err == nil {
		return ds
	}
	return st
}
