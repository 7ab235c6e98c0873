package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"

	"plaza/internal/config"
	"plaza/internal/plaza"
	"plaza/internal/users"
)

// newUsers builds the users and auth service over the backends, signing with keys.
func newUsers(cfg config.Config, d *deps, keys [][]byte) (*users.Service, error) {
	return users.New(users.Options{Users: d.db.Users(), Tokens: d.db.RefreshTokens(), Cache: d.state, Keys: keys, Logger: d.log,
		SessionLifetime: cfg.SessionLifetime})
}

// jwtKeys are the configured JWT keys or, in development without any, the key kept in the
// data directory.
func jwtKeys(cfg config.Config, log *slog.Logger) ([][]byte, error) {
	keys := configuredKeys(cfg)
	if len(keys) > 0 {
		return keys, nil
	}
	if cfg.Production() {
		// config.Load refuses this already; a Config built another way must not start
		// with a key it made up.
		return nil, &config.Error{Var: "PLAZA_JWT_SECRET", Msg: "required in production"}
	}
	key, err := users.DevKey(cfg.DataDir)
	if err != nil {
		return nil, &config.Error{Var: "PLAZA_DATA_DIR", Msg: "keeping the development JWT key: " + err.Error()}
	}
	log.Warn("PLAZA_JWT_SECRET is not set: tokens are signed with a development key kept in the data directory", "file", users.DevKeyFile)
	return [][]byte{key}, nil
}

func configuredKeys(cfg config.Config) [][]byte {
	var keys [][]byte
	for _, s := range cfg.JWTSecrets {
		keys = append(keys, []byte(s))
	}
	return keys
}

// bootstrapAdmin creates the admin named by PLAZA_ADMIN_EMAIL and PLAZA_ADMIN_PASSWORD if
// no user has that email. Instances starting together create it once.
func bootstrapAdmin(ctx context.Context, cfg config.Config, svc *users.Service, log *slog.Logger) error {
	if err := checkAdmin(cfg); err != nil || cfg.AdminEmail == "" {
		return err
	}
	created, err := svc.EnsureAdmin(ctx, adminName, cfg.AdminEmail, cfg.AdminPassword)
	if err != nil {
		return adminError(err)
	}
	if created {
		log.Info("admin created", "email", cfg.AdminEmail)
	}
	return nil
}

// adminName is the name the bootstrap admin gets.
const adminName = "Admin"

// checkAdmin checks PLAZA_ADMIN_EMAIL and PLAZA_ADMIN_PASSWORD without storing anything:
// both or neither, and credentials the users service would accept.
func checkAdmin(cfg config.Config) error {
	switch {
	case cfg.AdminEmail == "" && cfg.AdminPassword == "":
		return nil
	case cfg.AdminEmail == "":
		return &config.Error{Var: "PLAZA_ADMIN_EMAIL", Msg: "required when PLAZA_ADMIN_PASSWORD is set"}
	case cfg.AdminPassword == "":
		return &config.Error{Var: "PLAZA_ADMIN_PASSWORD", Msg: "required when PLAZA_ADMIN_EMAIL is set"}
	}
	if err := users.ValidateAdmin(adminName, cfg.AdminEmail, cfg.AdminPassword); err != nil {
		return adminError(err)
	}
	return nil
}

// adminError names the setting behind a validation error of the bootstrap admin.
func adminError(err error) error {
	e := plaza.AsError(err)
	if e.Code != plaza.EInvalid || len(e.Fields) == 0 {
		return fmt.Errorf("creating the admin: %w", err)
	}
	v := "PLAZA_ADMIN_EMAIL"
	if e.Fields[0].Field == "password" {
		v = "PLAZA_ADMIN_PASSWORD"
	}
	return &config.Error{Var: v, Msg: e.Fields[0].Message}
}

// CreateUser runs `plaza user create`: it registers in as the operator, so any role may
// be given, and publishes user.created like a registration over the API.
func CreateUser(ctx context.Context, cfg config.Config, log *slog.Logger, in users.NewUser) (users.User, error) {
	var u users.User
	err := withUsers(ctx, cfg, log, func(ctx context.Context, svc *users.Service) (err error) {
		u, err = svc.Register(ctx, in)
		return err
	})
	return u, err
}

// ListUsers runs `plaza user list`: every user, in creation order.
func ListUsers(ctx context.Context, cfg config.Config, log *slog.Logger) ([]users.User, error) {
	var all []users.User
	err := withUsers(ctx, cfg, log, func(ctx context.Context, svc *users.Service) error {
		req := plaza.PageRequest{Limit: plaza.MaxLimit}
		for {
			page, err := svc.List(ctx, req)
			if err != nil {
				return err
			}
			all = append(all, page.Items...)
			if page.NextCursor == "" {
				return nil
			}
			req.Cursor = page.NextCursor
		}
	})
	return all, err
}

// withUsers opens the backends, builds the users service and runs fn as the operator.
// The commands issue and verify no tokens, so without configured keys the service gets a
// throwaway one rather than creating the development key file as a side effect.
func withUsers(ctx context.Context, cfg config.Config, log *slog.Logger, fn func(context.Context, *users.Service) error) error {
	d, err := openDeps(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := d.close(); err != nil {
			log.Error("closing backends", "err", err)
		}
	}()
	keys := configuredKeys(cfg)
	if len(keys) == 0 {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		keys = [][]byte{key}
	}
	svc, err := newUsers(cfg, d, keys)
	if err != nil {
		return err
	}
	return fn(plaza.WithPrincipal(ctx, users.Operator), svc)
}
