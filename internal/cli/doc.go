// Package cli implements the e3 command line: one file per subcommand, each
// parsing its flags and calling library code. Commands that list things take
// --json and then print exactly one JSON document on stdout.
package cli
