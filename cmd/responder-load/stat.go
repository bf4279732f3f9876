package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// statCmd prints the median (or min, or max) of a numeric field over JSON
// reports, e.g. `stat accepted_alerts_per_sec a.json b.json c.json`. A
// field inside an object is named with dots: latency_ms.p99. A boolean
// counts as 1 (true) or 0.
func statCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	agg := fs.String("agg", "median", "median, mean, min, max or all (every value, space-separated)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() < 2 {
		_, _ = fmt.Fprintln(stderr, "responder-load stat: want FIELD FILE...")
		return 2
	}
	field, files := fs.Arg(0), fs.Args()[1:]
	var vals []float64
	for _, path := range files {
		b, err := readFile(path)
		if err != nil {
			return fail(stderr, err)
		}
		v, err := fieldValue(b, field)
		if err != nil {
			return fail(stderr, fmt.Errorf("%s: %w", path, err))
		}
		vals = append(vals, v)
	}
	var out float64
	switch *agg {
	case "median":
		out = median(vals)
	case "mean":
		for _, v := range vals {
			out += v / float64(len(vals))
		}
	case "min":
		out = slices.Min(vals)
	case "max":
		out = slices.Max(vals)
	case "all":
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = strconv.FormatFloat(v, 'f', -1, 64)
		}
		_, _ = fmt.Fprintln(stdout, strings.Join(parts, " "))
		return 0
	default:
		_, _ = fmt.Fprintf(stderr, "responder-load stat: --agg %q: want median, mean, min, max or all\n", *agg)
		return 2
	}
	_, _ = fmt.Fprintln(stdout, strconv.FormatFloat(out, 'f', -1, 64))
	return 0
}

// fieldValue finds a dotted field in a JSON document.
func fieldValue(doc []byte, field string) (float64, error) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return 0, fmt.Errorf("decode: %w", err)
	}
	for _, part := range strings.Split(field, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return 0, fmt.Errorf("field %s: %q is inside something that is not an object", field, part)
		}
		if v, ok = obj[part]; !ok {
			return 0, fmt.Errorf("field %s: no %q", field, part)
		}
	}
	switch x := v.(type) {
	case float64:
		return x, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("field %s: not a number", field)
}

// median of the values (the mean of the middle two for an even count).
func median(vals []float64) float64 {
	if len(vals) == 0 {
		return 0
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
