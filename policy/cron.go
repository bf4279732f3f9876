package policy

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Cron is a five-field cron line (minute hour day-of-month month
// day-of-week) read in a time zone: when a scheduled drill starts.
//
// Each field is "*", a value, a range "a-b", either with a step "/n", or a
// comma-separated list of those. Months and weekdays may be named (jan,
// mon); Sunday is 0 or 7. As in cron, when both day fields are restricted
// a day matching either one matches.
//
// Across daylight saving time, each day runs at most once per matching
// wall-clock time: a time that does not exist that day (02:30 when clocks
// jump from 02:00 to 03:00) runs at the same distance after the jump
// (03:30), and a time that happens twice (clocks going back) runs the
// first time only. A drill is neither skipped nor run twice.
type Cron struct {
	spec                          string
	minute, hour, dom, month, dow uint64 // bit n set: value n matches
	domAny, dowAny                bool
}

type cronField struct {
	name     string
	min, max int
	names    []string // names[i] is value min+i
}

var cronFields = [5]cronField{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day of month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	{name: "day of week", min: 0, max: 7, names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}

// ParseCron reads a five-field cron line.
func ParseCron(spec string) (Cron, error) {
	fields := strings.Fields(spec)
	if len(fields) != 5 {
		return Cron{}, fmt.Errorf("%q: want five fields, minute hour day-of-month month day-of-week (e.g. \"0 10 * * wed\")", spec)
	}
	c := Cron{spec: strings.Join(fields, " ")}
	sets := [5]*uint64{&c.minute, &c.hour, &c.dom, &c.month, &c.dow}
	for i, f := range fields {
		set, err := cronFields[i].parse(f)
		if err != nil {
			return Cron{}, fmt.Errorf("%q: %w", spec, err)
		}
		*sets[i] = set
	}
	if c.dow&(1<<7) != 0 { // 7 is Sunday too
		c.dow |= 1
	}
	c.domAny, c.dowAny = fields[2] == "*", fields[4] == "*"
	return c, nil
}

func (f cronField) parse(text string) (uint64, error) {
	var set uint64
	for _, part := range strings.Split(text, ",") {
		rng, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("%s %q: the step after / must be a positive number", f.name, part)
			}
			step = n
		}
		lo, hi := f.min, f.max
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = f.value(a); err != nil {
				return 0, err
			}
			if hi, err = f.value(b); err != nil {
				return 0, err
			}
			if lo > hi {
				return 0, fmt.Errorf("%s %q: the range runs backwards", f.name, part)
			}
		default:
			v, err := f.value(rng)
			if err != nil {
				return 0, err
			}
			lo, hi = v, v
			if hasStep {
				hi = f.max
			}
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

func (f cronField) value(text string) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(text, n) {
			return f.min + i, nil
		}
	}
	v, err := strconv.Atoi(text)
	if err != nil || v < f.min || v > f.max {
		return 0, fmt.Errorf("%s %q: want %d to %d%s", f.name, text, f.min, f.max, f.nameHint())
	}
	return v, nil
}

func (f cronField) nameHint() string {
	if len(f.names) == 0 {
		return ""
	}
	return " or a name (" + f.names[0] + ", " + f.names[1] + ", ...)"
}

// String is the cron line as parsed.
func (c Cron) String() string { return c.spec }

// IsZero reports whether c was never parsed.
func (c Cron) IsZero() bool { return c.spec == "" }

// dayMatches reports whether the date matches the day fields.
func (c Cron) dayMatches(y int, m time.Month, d int, loc *time.Location) bool {
	if c.month&(1<<uint(m)) == 0 {
		return false
	}
	dom := c.dom&(1<<uint(d)) != 0
	dow := c.dow&(1<<uint(time.Date(y, m, d, 12, 0, 0, 0, loc).Weekday())) != 0
	switch {
	case c.domAny && c.dowAny:
		return true
	case c.domAny:
		return dow
	case c.dowAny:
		return dom
	}
	return dom || dow
}

// maxCronDays bounds the search of Next: a schedule that matches nothing
// in that many days (31 February) never runs.
const maxCronDays = 8 * 366

// Next is the first time after after at which the schedule runs, read in
// loc; the zero time when it never does.
func (c Cron) Next(after time.Time, loc *time.Location) time.Time {
	if c.IsZero() {
		return time.Time{}
	}
	local := after.In(loc)
	y, m, d := local.Date()
	for i := 0; i <= maxCronDays; i++ {
		day := time.Date(y, m, d+i, 12, 0, 0, 0, loc)
		dy, dm, dd := day.Date()
		if !c.dayMatches(dy, dm, dd, loc) {
			continue
		}
		// A wall time in a DST gap moves later, so take the earliest
		// instant of the day's matches rather than the first in order.
		var best time.Time
		for h := c.hour; h != 0; h &= h - 1 {
			hour := bits.TrailingZeros64(h)
			for mi := c.minute; mi != 0; mi &= mi - 1 {
				t := firstAt(dy, dm, dd, hour, bits.TrailingZeros64(mi), loc)
				if t.After(after) && (best.IsZero() || t.Before(best)) {
					best = t
				}
			}
		}
		if !best.IsZero() {
			return best
		}
	}
	return time.Time{}
}

// firstAt is the wall time in loc, at its first occurrence when clocks
// going back make it happen twice (time.Date may give the second).
func firstAt(y int, m time.Month, d, hour, minute int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, hour, minute, 0, 0, loc)
	for _, back := range []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour} {
		e := t.Add(-back).In(loc)
		if ey, em, ed := e.Date(); ey == y && em == m && ed == d && e.Hour() == hour && e.Minute() == minute {
			return e
		}
	}
	return t
}
