// Package plaza holds the domain vocabulary shared by every service, store and transport:
// the error type with its small set of codes, domain events, and the domain types.
package plaza

import (
	"errors"
	"fmt"
	"time"
)

// ErrorCode is one word of the error vocabulary in docs/contracts.md. Each transport maps it once.
type ErrorCode string

const (
	EBadRequest         ErrorCode = "bad_request"
	EInvalid            ErrorCode = "invalid"
	EUnauthenticated    ErrorCode = "unauthenticated"
	EForbidden          ErrorCode = "forbidden"
	ENotFound           ErrorCode = "not_found"
	EConflict           ErrorCode = "conflict"
	EPreconditionFailed ErrorCode = "precondition_failed"
	ETooLarge           ErrorCode = "too_large"
	ERateLimited        ErrorCode = "rate_limited"
	EUnavailable        ErrorCode = "unavailable"
	EInternal           ErrorCode = "internal"
)

// FieldError names one field that breaks a rule.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is the one error type that crosses layers. Message is safe to show to clients;
// Err (the cause) is only logged.
type Error struct {
	Code       ErrorCode
	Message    string
	Fields     []FieldError
	RetryAfter time.Duration // for ERateLimited and EUnavailable: when a retry may succeed
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a client-safe message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error that keeps cause for the logs and shows only msg to clients.
func Wrap(code ErrorCode, cause error, msg string) *Error {
	return &Error{Code: code, Message: msg, Err: cause}
}

// Invalid returns an EInvalid error carrying field errors.
func Invalid(fields ...FieldError) *Error {
	return &Error{Code: EInvalid, Message: "the request breaks validation rules", Fields: fields}
}

// ErrorCodeOf returns the code of the first *Error in err's chain, EInternal for any other
// non-nil error, and "" for nil.
func ErrorCodeOf(err error) ErrorCode {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// AsError returns err as an *Error; errors of unknown kind become EInternal with a generic
// message, keeping the original as the cause.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: EInternal, Message: "internal error", Err: err}
}

// Problems collects field errors during validation.
type Problems []FieldError

// Add records a problem with field.
func (p *Problems) Add(field, format string, args ...any) {
	*p = append(*p, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns nil when no problem was recorded, else an EInvalid *Error.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return Invalid(p...)
}
