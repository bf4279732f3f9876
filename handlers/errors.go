package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

// apiError is an error with the HTTP status it should be answered with and a
// message that tells the caller what to fix.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return errorf(http.StatusBadRequest, format, args...)
}

// errorHandler turns every error into a status and a JSON body
// {"error": "..."}: the one place where errors become HTTP.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := s.statusOf(err, c)
	switch {
	case c.Request().Method == http.MethodHead:
		err = c.NoContent(status)
	case isPage(c.Request()):
		// A refusal made before the pages' own handling (a Host or an
		// origin refused) is still shown to a person as a page.
		err = s.render(c, status, "error", http.StatusText(status), struct {
			Status  int
			Message string
		}{status, msg})
	default:
		err = c.JSON(status, map[string]string{"error": msg})
	}
	if err != nil {
		s.log.Warn().Err(err).Msg("write error response")
	}
}

// kindStatus is the HTTP status of each kind of the incident service's
// refusals.
var kindStatus = map[incident.Kind]int{
	incident.Invalid:       http.StatusBadRequest,
	incident.NotFound:      http.StatusNotFound,
	incident.Conflict:      http.StatusConflict,
	incident.Unprocessable: http.StatusUnprocessableEntity,
}

// isPage reports whether r is a browser's, for the web pages (anything but
// the API, health and metrics, asked for as HTML), whose errors are pages
// rather than JSON.
func isPage(r *http.Request) bool {
	p := r.URL.Path
	return !strings.HasPrefix(p, "/api/") && p != "/healthz" && p != "/readyz" && p != "/metrics" &&
		strings.Contains(r.Header.Get(echo.HeaderAccept), echo.MIMETextHTML)
}

// statusOf is the HTTP status and the message an error is answered with,
// for the API and the web pages alike. It sets Retry-After when the
// caller should retry, and logs what is the server's own fault.
func (s *Server) statusOf(err error, c echo.Context) (int, string) {
	status, msg := http.StatusInternalServerError, "internal error"
	var ae *apiError
	var ie *incident.Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
		status, msg = ae.status, ae.msg
	case errors.As(err, &ie):
		status, msg = kindStatus[ie.Kind], ie.Msg
	case errors.Is(err, store.ErrNotFound):
		status, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, store.ErrBusy), errors.Is(err, store.ErrClosed), errors.Is(err, store.ErrUnavailable):
		status, msg = http.StatusServiceUnavailable, "write queue is full, retry later"
		switch {
		case errors.Is(err, store.ErrClosed):
			msg = "shutting down, retry later"
		case errors.Is(err, store.ErrUnavailable):
			msg = "the database is unreachable, retry later"
		}
		c.Response().Header().Set("Retry-After", strconv.Itoa(s.retryAfterSeconds()))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		status, msg = http.StatusServiceUnavailable, "request timed out before it was written"
	case errors.As(err, &he):
		status = he.Code
		msg = strings.ToLower(http.StatusText(he.Code))
		if m, ok := he.Message.(string); ok && m != "" {
			msg = strings.ToLower(m)
		}
	}
	if status >= 500 && status != http.StatusServiceUnavailable {
		s.log.Error().Err(err).Str("path", c.Path()).Msg("request failed")
	}
	return status, msg
}

func (s *Server) retryAfterSeconds() int {
	secs := int(s.cfg.RetryAfter.Seconds() + 0.999)
	if secs < 1 {
		secs = 1
	}
	return secs
}

// uncompressed refuses a body sent compressed (Content-Encoding other
// than identity), naming the encoding, rather than reading it as text.
func uncompressed(r *http.Request) error {
	if enc := strings.TrimSpace(r.Header.Get(echo.HeaderContentEncoding)); enc != "" && !strings.EqualFold(enc, "identity") {
		return errorf(http.StatusUnsupportedMediaType, "content encoding %q: send the body uncompressed", integrations.Shorten(enc, 32))
	}
	return nil
}

// readBody reads the request body within the configured limit. A body over
// the limit is a 413; a content type other than JSON is a 415.
func (s *Server) readBody(c echo.Context) ([]byte, error) {
	r := c.Request()
	if err := uncompressed(r); err != nil {
		return nil, err
	}
	// JSON only: a browser sends a form or text/plain to another site
	// without asking it first, never application/json. (curl -d sends a
	// form unless given -H 'Content-Type: application/json'.)
	ct := r.Header.Get(echo.HeaderContentType)
	if ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != echo.MIMEApplicationJSON && !strings.HasSuffix(mt, "+json")) {
			return nil, errorf(http.StatusUnsupportedMediaType, "content type %q: send application/json", integrations.Shorten(ct, 64))
		}
	}
	if r.ContentLength > s.cfg.BodyLimit {
		return nil, errorf(http.StatusRequestEntityTooLarge, "request body is %d bytes, over the limit of %d", r.ContentLength, s.cfg.BodyLimit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, s.cfg.BodyLimit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "request body is over the limit of %d bytes", s.cfg.BodyLimit)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// The server's read timeout passed while the body trickled in.
			return nil, errorf(http.StatusRequestTimeout, "request body not received in time (http.read_timeout): send it at once")
		}
		return nil, badRequest("read request body: %v", err)
	}
	if ct == "" && len(body) > 0 {
		return nil, errorf(http.StatusUnsupportedMediaType, "no content type: send the body with Content-Type: application/json")
	}
	return body, nil
}

// bindStrict reads a people-facing request's body within the limit and
// decodes it strictly into v (an unknown field is a 400). An empty body is
// {} when allowEmpty.
func (s *Server) bindStrict(c echo.Context, v any, allowEmpty bool) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	return decodeJSON(body, v, true, allowEmpty)
}

// decodeJSON decodes body into v. With strict, unknown fields are refused
// (the people-facing API); webhooks are decoded leniently because senders
// add fields between versions. An empty body decodes as {} when allowEmpty.
func decodeJSON(body []byte, v any, strict, allowEmpty bool) error {
	if !utf8.Valid(body) {
		return badRequest("body: not valid UTF-8")
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		if allowEmpty {
			return nil
		}
		return badRequest("request body is empty: send a JSON object")
	}
	if at := tooDeep(body); at >= 0 {
		return badRequest("malformed JSON at byte %d: objects and arrays nested more than %d levels deep", at, maxJSONDepth)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		if field, value, ok := badTimeField(body, v); ok {
			return badRequest("%s: %s is not a time: give one like %s (RFC 3339, in UTC or with an offset)", field, value, exampleTime)
		}
		return badRequest("%s", describeJSONError(err))
	}
	if dec.More() {
		return badRequest("malformed JSON: more than one value in the body")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("malformed JSON: data after the object")
	}
	return nil
}

// maxJSONDepth bounds how deeply a body may nest objects and arrays.
// Senders nest a handful of levels (an OpsGenie detail holding a list of
// objects is five); the decoder's own bound is 10,000, deep enough to make
// decoding into any-typed values cost far more than the body's size.
const maxJSONDepth = 32

// tooDeep returns the offset of the first bracket that nests deeper than
// maxJSONDepth, or -1. Brackets inside strings do not count.
func tooDeep(body []byte) int {
	depth, inString, escaped := 0, false, false
	for i, b := range body {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
		case b == '"':
			inString = true
		case b == '{' || b == '[':
			if depth++; depth > maxJSONDepth {
				return i
			}
		case b == '}' || b == ']':
			depth--
		}
	}
	return -1
}

func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case errors.As(err, &te):
		if te.Field == "" {
			return fmt.Sprintf("body: got JSON %s, want a JSON object", te.Value)
		}
		// Fields of an embedded struct (template.Data) come prefixed with its name.
		field := strings.TrimPrefix(te.Field, "Data.")
		return fmt.Sprintf("%s: got JSON %s, want %s", field, te.Value, jsonKind(te.Type))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of body"
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if f, ok := strings.CutPrefix(msg, "unknown field "); ok {
		return "unknown field " + f + ": remove it (see the API contract)"
	}
	return "invalid JSON: " + msg
}

func jsonKind(t reflect.Type) string {
	if t == reflect.TypeFor[time.Time]() {
		return "an RFC 3339 time like " + exampleTime
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// exampleTime is how a time is shown to a person asked for one.
const exampleTime = "2026-11-22T03:04:00Z"

// badTimeField finds the top-level field of the object in body that should
// hold a time (v's field of type time.Time or *time.Time) and does not
// parse as one: the JSON decoder's error for it names no field.
func badTimeField(body []byte, v any) (field, value string, ok bool) {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return "", "", false
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil {
		return "", "", false
	}
	timeType := reflect.TypeFor[time.Time]()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type != timeType && f.Type != reflect.PointerTo(timeType) {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		for key, val := range raw {
			var tm time.Time
			if strings.EqualFold(key, name) && string(val) != "null" && json.Unmarshal(val, &tm) != nil {
				return name, integrations.Shorten(string(val), 64), true
			}
		}
	}
	return "", "", false
}
