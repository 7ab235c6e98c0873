package grpcapi

import (
	"context"

	plazav1 "plaza/api/proto/plaza/v1"
)

// authService is plaza.v1.AuthService.
type authService struct {
	s *Server
}

func (a authService) Login(ctx context.Context, req *plazav1.LoginRequest) (*plazav1.LoginResponse, error) {
	t, err := a.s.opts.Users.Login(ctx, req.GetEmail(), req.GetPassword())
	if err != nil {
		return nil, err
	}
	return &plazav1.LoginResponse{Tokens: tokensPB(t)}, nil
}

func (a authService) Refresh(ctx context.Context, req *plazav1.RefreshRequest) (*plazav1.RefreshResponse, error) {
	t, err := a.s.opts.Users.Refresh(ctx, req.GetRefreshToken())
	if err != nil {
		return nil, err
	}
	return &plazav1.RefreshResponse{Tokens: tokensPB(t)}, nil
}

func (a authService) Logout(ctx context.Context, req *plazav1.LogoutRequest) (*plazav1.LogoutResponse, error) {
	if err := a.s.opts.Users.Logout(ctx, req.GetRefreshToken()); err != nil {
		return nil, err
	}
	return &plazav1.LogoutResponse{}, nil
}
