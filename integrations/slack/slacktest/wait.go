package slacktest

import (
	"fmt"
	"time"
)

// changed is closed, and replaced, whenever the fake's state changes: a
// call answered, a connection opened, a call held back.
func (s *Server) changedCh() <-chan struct{} {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	if s.change == nil {
		s.change = make(chan struct{})
	}
	return s.change
}

// notify wakes every WaitFor.
func (s *Server) notify() {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	if s.change != nil {
		close(s.change)
		s.change = nil
	}
}

// WaitFor waits until cond, checked each time the fake's state changes, is
// true, or limit passes: tests wait on what the fake saw, without polling.
func (s *Server) WaitFor(limit time.Duration, what string, cond func() bool) error {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		ch := s.changedCh()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return fmt.Errorf("slacktest: waited %s for %s", limit, what)
		}
	}
}
