package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"plaza/internal/app"
	"plaza/internal/config"
	"plaza/internal/plaza"
	"plaza/internal/users"
)

const userUsage = `Usage:
  plaza user create --email EMAIL --name NAME [--admin] [--password-stdin] [flags]
  plaza user list [flags]

create asks for the password at the terminal, or reads it as one line from standard
input with --password-stdin. Both commands use the configured database: the same
environment variables and flags as serve (DATABASE_URL, PLAZA_DATA_DIR, …; see
'plaza serve --help').
`

// runUser is `plaza user create|list`.
func runUser(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && isHelp(args[0]) {
			fmt.Fprint(stdout, userUsage)
			return nil
		}
		fmt.Fprint(stderr, userUsage)
		return fmt.Errorf("%w: plaza user create | list", errUsage)
	}
	switch args[0] {
	case "create":
		return runUserCreate(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "list":
		cfg, err := config.Load(flag.NewFlagSet("user list", flag.ContinueOnError), userUsage, args[1:], getenv, stdout)
		if err != nil {
			return err
		}
		all, err := app.ListUsers(ctx, cfg, newLogger(cfg, stderr))
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tEMAIL\tROLE\tCREATED")
		for _, u := range all {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Name, u.Email, u.Role, u.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	default:
		fmt.Fprint(stderr, userUsage)
		return fmt.Errorf("%w: unknown user command %q: want create or list", errUsage, args[0])
	}
}

func runUserCreate(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("user create", flag.ContinueOnError)
	email := fs.String("email", "", "the new user's `EMAIL` (required)")
	name := fs.String("name", "", "the new user's `NAME` (required)")
	admin := fs.Bool("admin", false, "make the user an admin")
	fromStdin := fs.Bool("password-stdin", false, "read the password as one line from standard input")
	cfg, err := config.Load(fs, userUsage, args, getenv, stdout)
	if err != nil {
		return err
	}
	if *email == "" || *name == "" {
		fmt.Fprint(stderr, userUsage)
		return fmt.Errorf("%w: plaza user create needs --email and --name", errUsage)
	}
	password, err := readPassword(stdin, stderr, *fromStdin)
	if err != nil {
		return err
	}
	in := users.NewUser{Name: *name, Email: *email, Password: password, Role: plaza.RoleUser}
	if *admin {
		in.Role = plaza.RoleAdmin
	}
	u, err := app.CreateUser(ctx, cfg, newLogger(cfg, stderr), in)
	if err != nil {
		return describe(err)
	}
	fmt.Fprintf(stdout, "created %s %s <%s> with id %s\n", u.Role, u.Name, u.Email, u.ID)
	return nil
}

// readPassword reads one line from stdin with --password-stdin, else prompts twice at the
// terminal without echo. Without a terminal and without the flag it refuses, rather than
// read a password that would show on the screen or hang a script.
func readPassword(stdin io.Reader, stderr io.Writer, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the password from standard input: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", fmt.Errorf("%w: --password-stdin read an empty password", errUsage)
		}
		return line, nil
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", fmt.Errorf("%w: standard input is not a terminal to ask for the password at; pipe it in with --password-stdin", errUsage)
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		return string(b), err
	}
	pw, err := ask("Password: ")
	if err != nil {
		return "", err
	}
	again, err := ask("Repeat the password: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", fmt.Errorf("%w: the passwords differ", errUsage)
	}
	return pw, nil
}

// describe spells out a refused creation: each field problem, and exit code 2 for them.
func describe(err error) error {
	e := plaza.AsError(err)
	switch e.Code {
	case plaza.EInvalid:
		var parts []string
		for _, f := range e.Fields {
			parts = append(parts, f.Field+" "+f.Message)
		}
		return fmt.Errorf("%w: %s", errUsage, strings.Join(parts, "; "))
	case plaza.EConflict:
		return errors.New(e.Message)
	}
	return err
}
