package httpapi

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"plaza/internal/plaza"
)

// problem is an RFC 9457 problem details body.
type problem struct {
	Type     string             `json:"type"`
	Title    string             `json:"title"`
	Status   int                `json:"status"`
	Detail   string             `json:"detail,omitempty"`
	Instance string             `json:"instance,omitempty"`
	Code     plaza.ErrorCode    `json:"code"`
	Errors   []plaza.FieldError `json:"errors,omitempty"`
}

// StatusOf maps the error vocabulary to HTTP, the one place that does so.
func StatusOf(code plaza.ErrorCode) int {
	switch code {
	case plaza.EBadRequest:
		return http.StatusBadRequest
	case plaza.EInvalid:
		return http.StatusUnprocessableEntity
	case plaza.EUnauthenticated:
		return http.StatusUnauthorized
	case plaza.EForbidden:
		return http.StatusForbidden
	case plaza.ENotFound:
		return http.StatusNotFound
	case plaza.EConflict:
		return http.StatusConflict
	case plaza.EPreconditionFailed:
		return http.StatusPreconditionFailed
	case plaza.ETooLarge:
		return http.StatusRequestEntityTooLarge
	case plaza.ERateLimited:
		return http.StatusTooManyRequests
	case plaza.EUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// writeError writes err as a problem body. Details of internal and unavailable errors go to
// the log only.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := plaza.AsError(err)
	status := StatusOf(e.Code)
	detail := e.Message
	switch e.Code {
	case plaza.EInternal:
		log.ErrorContext(r.Context(), "internal error", "err", err, "request_id", RequestIDFrom(r.Context()))
		detail = "an internal error occurred; quote the request ID when reporting it"
	case plaza.EUnavailable:
		log.WarnContext(r.Context(), "dependency unavailable", "err", err, "request_id", RequestIDFrom(r.Context()))
	}
	h := w.Header()
	switch e.Code {
	case plaza.EUnauthenticated:
		h.Set("WWW-Authenticate", `Bearer realm="plaza"`)
	case plaza.ERateLimited, plaza.EUnavailable:
		if e.RetryAfter > 0 {
			h.Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
		}
	}
	writeProblem(w, r, status, e.Code, detail, e.Fields)
}

func writeProblem(w http.ResponseWriter, r *http.Request, status int, code plaza.ErrorCode, detail string, fields []plaza.FieldError) {
	p := problem{
		Type:     "https://plaza.dev/problems/" + string(code),
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   detail,
		Instance: RequestIDFrom(r.Context()),
		Code:     code,
		Errors:   fields,
	}
	h := w.Header()
	h.Del("Content-Length")
	h.Del("ETag")
	h.Set("Cache-Control", "no-store")
	writeJSON(w, r, status, "application/problem+json", p)
}

// codeForStatus is used where only a status is known (the mux's own 404/405).
func codeForStatus(status int) plaza.ErrorCode {
	for _, c := range []plaza.ErrorCode{plaza.ENotFound, plaza.EBadRequest, plaza.ETooLarge} {
		if StatusOf(c) == status {
			return c
		}
	}
	if status == http.StatusMethodNotAllowed {
		return plaza.EBadRequest
	}
	return plaza.EInternal
}

var errTooLarge = &plaza.Error{Code: plaza.ETooLarge, Message: "the request body is larger than the server accepts"}

// asTooLarge turns the body reader's limit error into the too_large code.
func asTooLarge(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &plaza.Error{Code: plaza.ETooLarge, Message: "the request body is larger than " + strconv.FormatInt(mbe.Limit, 10) + " bytes", Err: err}
	}
	return err
}
