package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver for the admin connection
	"github.com/redis/go-redis/v9"
)

// createDatabase creates a database with a random name on the PostgreSQL server of adminURL
// and returns its URL and a function that drops it.
func createDatabase(ctx context.Context, adminURL string) (string, func(), error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", nil, errors.New("the PostgreSQL URL does not parse")
	}
	db, err := sql.Open("pgx", adminURL)
	if err != nil {
		return "", nil, err
	}
	name := "plaza_bench_" + randomHex(6)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(cctx, "CREATE DATABASE "+name); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("create database on %s: %w", redactURL(adminURL), err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		db.Close()
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// benchRedisDB is the Redis database the harness uses and empties, before and after, so
// that its keys and streams neither meet nor leave behind anyone else's.
const benchRedisDB = 15

// benchRedis returns the URL of database benchRedisDB on the server of redisURL, emptied,
// and a function that empties it again.
func benchRedis(ctx context.Context, redisURL string) (string, func(), error) {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return "", nil, errors.New("the Redis URL does not parse")
	}
	opts.DB = benchRedisDB
	c := redis.NewClient(opts)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.FlushDB(cctx).Err(); err != nil {
		c.Close()
		return "", nil, fmt.Errorf("redis %s database %d: %w", redactURL(redisURL), benchRedisDB, err)
	}
	flush := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.FlushDB(ctx).Err()
		c.Close()
	}
	u, _ := url.Parse(redisURL)
	u.Path = "/" + strconv.Itoa(benchRedisDB)
	return u.String(), flush, nil
}
