package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// getBackup answers GET /api/v1/admin/backup: a consistent copy of the
// whole store, taken from one read transaction while the daemon keeps
// serving, as application/octet-stream with its Content-Length. A copy cut
// short (the client went away, the connection broke) is shorter than that
// length, which `responder backup` checks along with the file itself.
func (s *Server) getBackup(c echo.Context) error {
	if s.backup == nil {
		return errorf(http.StatusNotFound, "this daemon keeps its data in PostgreSQL: back it up with the database's own tools "+
			"(pg_dump or continuous archiving; docs/operations.md)")
	}
	// A page of another site can make the browser send a GET (no-cors) to
	// the loopback default, which has no tokens; it could not read the
	// answer, but the copy would cost the disk and hold a read transaction.
	if site := c.Request().Header.Get("Sec-Fetch-Site"); site != "" && site != "none" && site != "same-origin" {
		return errorf(http.StatusForbidden, "a backup is not served to a request another site made (Sec-Fetch-Site: %s)", site)
	}
	res := c.Response()
	rc := http.NewResponseController(res)
	started := s.now()
	name := "responder-" + started.Format("20060102T150405Z") + ".db"
	n, err := s.backup.Backup(res, func(size int64) {
		// A large file takes longer than http.write_timeout, which is meant
		// for ordinary answers; but a client that stops reading must not
		// hold the read transaction (and the file's free pages) for ever:
		// a minute, plus the copy at 8 MiB/s.
		deadline := time.Now().Add(time.Minute + time.Duration(size/(8<<20))*time.Second)
		if err := rc.SetWriteDeadline(deadline); err != nil {
			s.log.Warn().Err(err).Msg("backup: cannot set the write deadline of the copy; http.write_timeout applies")
		}
		h := res.Header()
		h.Set(echo.HeaderContentType, echo.MIMEOctetStream)
		h.Set(echo.HeaderContentLength, strconv.FormatInt(size, 10))
		h.Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`"`)
		h.Set("Cache-Control", "no-store")
		res.WriteHeader(http.StatusOK)
	})
	tok, _ := c.Get(ctxTokenName).(string)
	if err != nil {
		if !res.Committed {
			return errorf(http.StatusServiceUnavailable, "the store cannot be read for a backup: %v", err)
		}
		// The answer has begun: all that is left is to cut it short, which
		// the client sees against the Content-Length.
		s.log.Error().Err(err).Int64("bytes", n).Str("token", tok).Msg("backup cut short")
		return nil
	}
	s.log.Info().Int64("bytes", n).Str("token", tok).Dur("took", s.now().Sub(started)).Msg("backup served")
	return nil
}
