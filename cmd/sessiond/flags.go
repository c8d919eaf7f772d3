package main

import (
	"errors"
	"flag"
	"time"
)

// errNotDuration is what a bad value of a duration flag or variable is
// told: the format, with examples.
var errNotDuration = errors.New("not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units ns, us, ms, s, m, h; 0 needs none)")

// badDuration is the first bad value a duration flag was given.
type badDuration struct{ flag, value string }

// durationValue is a duration flag whose Set says what a duration looks
// like, and records the first bad value on the command line.
type durationValue struct {
	flag.Value
	name string
	bad  **badDuration
}

func (d durationValue) Set(s string) error {
	if _, err := time.ParseDuration(s); err != nil {
		if *d.bad == nil {
			*d.bad = &badDuration{flag: d.name, value: s}
		}
		return errNotDuration
	}
	return d.Value.Set(s)
}

// checkDurations puts a durationValue around every duration flag of fs,
// until restore puts the flag package's own back (whose type the usage
// names "duration").
func checkDurations(fs *flag.FlagSet, bad **badDuration) (restore func()) {
	saved := map[*flag.Flag]flag.Value{}
	fs.VisitAll(func(f *flag.Flag) {
		if g, ok := f.Value.(flag.Getter); ok {
			if _, ok := g.Get().(time.Duration); ok {
				saved[f] = f.Value
				f.Value = durationValue{Value: f.Value, name: f.Name, bad: bad}
			}
		}
	})
	return func() {
		for f, v := range saved {
			f.Value = v
		}
	}
}

// parseInterspersed parses the flags in args wherever they are among the
// positional arguments, which fs.Args then returns in their order; after
// "--" every word is an argument.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			positional = append(positional, rest...) // the flag package stopped at --
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}
