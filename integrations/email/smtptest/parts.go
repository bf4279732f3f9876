package smtptest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"strings"
)

// Text returns the decoded body of the message's first text/plain part.
func (m Message) Text() (string, error) { return m.Part("text/plain") }

// HTML returns the decoded body of the message's first text/html part.
func (m Message) HTML() (string, error) { return m.Part("text/html") }

// Part returns the decoded body (quoted-printable or base64 undone) of the
// first part whose media type is mediaType, searching nested multiparts
// depth first; a message that is not multipart is its own only part.
func (m Message) Part(mediaType string) (string, error) {
	if m.Header == nil {
		return "", errors.New("smtptest: message has no header")
	}
	body, err := bodyOf(m.Data)
	if err != nil {
		return "", err
	}
	h := textproto.MIMEHeader(m.Header)
	b, ok, err := findPart(h, body, strings.ToLower(mediaType))
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("smtptest: no %s part", mediaType)
	}
	return string(b), nil
}

// MediaTypes lists the media types of the message's parts in order, nested
// multiparts included (for a test that asserts the structure).
func (m Message) MediaTypes() ([]string, error) {
	if m.Header == nil {
		return nil, errors.New("smtptest: message has no header")
	}
	body, err := bodyOf(m.Data)
	if err != nil {
		return nil, err
	}
	var types []string
	err = walk(textproto.MIMEHeader(m.Header), body, func(mt string, _ textproto.MIMEHeader, _ []byte) bool {
		types = append(types, mt)
		return false
	})
	return types, err
}

func bodyOf(data []byte) ([]byte, error) {
	i := bytes.Index(data, []byte("\r\n\r\n"))
	sep := 4
	if i < 0 {
		i, sep = bytes.Index(data, []byte("\n\n")), 2
	}
	if i < 0 {
		return nil, errors.New("smtptest: message has no body")
	}
	return data[i+sep:], nil
}

func findPart(h textproto.MIMEHeader, body []byte, want string) ([]byte, bool, error) {
	var found []byte
	var matched bool
	var decodeErr error
	err := walk(h, body, func(mt string, ph textproto.MIMEHeader, raw []byte) bool {
		if mt != want {
			return false
		}
		matched = true
		found, decodeErr = decode(ph.Get("Content-Transfer-Encoding"), raw)
		return true
	})
	if err == nil {
		err = decodeErr
	}
	return found, matched, err
}

// walk calls visit for every leaf and multipart container, depth first,
// until visit returns true.
func walk(h textproto.MIMEHeader, body []byte, visit func(mediaType string, h textproto.MIMEHeader, raw []byte) bool) error {
	_, err := walkPart(h, body, visit)
	return err
}

func walkPart(h textproto.MIMEHeader, body []byte, visit func(string, textproto.MIMEHeader, []byte) bool) (bool, error) {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false, fmt.Errorf("smtptest: content type %q: %w", ct, err)
	}
	if visit(mt, h, body) {
		return true, nil
	}
	if !strings.HasPrefix(mt, "multipart/") {
		return false, nil
	}
	r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := r.NextRawPart()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("smtptest: %s part: %w", mt, err)
		}
		raw, err := io.ReadAll(p)
		if err != nil {
			return false, fmt.Errorf("smtptest: read part: %w", err)
		}
		done, err := walkPart(p.Header, raw, visit)
		if done || err != nil {
			return done, err
		}
	}
}

func decode(cte string, raw []byte) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		b, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return nil, fmt.Errorf("smtptest: quoted-printable: %w", err)
		}
		return b, nil
	case "base64":
		clean := strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, string(raw))
		b, err := base64.StdEncoding.DecodeString(clean)
		if err != nil {
			return nil, fmt.Errorf("smtptest: base64: %w", err)
		}
		return b, nil
	default:
		return raw, nil
	}
}
