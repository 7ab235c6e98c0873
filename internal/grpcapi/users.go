package grpcapi

import (
	"context"

	plazav1 "plaza/api/proto/plaza/v1"
	"plaza/internal/plaza"
	"plaza/internal/users"
)

// userService is plaza.v1.UserService.
type userService struct {
	s *Server
}

func (u userService) GetUser(ctx context.Context, req *plazav1.GetUserRequest) (*plazav1.GetUserResponse, error) {
	got, err := u.s.opts.Users.Get(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &plazav1.GetUserResponse{User: userPB(got)}, nil
}

func (u userService) GetMe(ctx context.Context, _ *plazav1.GetMeRequest) (*plazav1.GetMeResponse, error) {
	me, err := u.s.opts.Users.Me(ctx)
	if err != nil {
		return nil, err
	}
	return &plazav1.GetMeResponse{User: userPB(me)}, nil
}

func (u userService) ListUsers(ctx context.Context, req *plazav1.ListUsersRequest) (*plazav1.ListUsersResponse, error) {
	page, err := u.s.opts.Users.List(ctx, plaza.PageRequest{Limit: int(req.GetPageSize()), Cursor: req.GetPageToken()})
	if err != nil {
		return nil, renamed(err, pageFields)
	}
	out := &plazav1.ListUsersResponse{Users: make([]*plazav1.User, len(page.Items)), NextPageToken: page.NextCursor}
	for i, it := range page.Items {
		out.Users[i] = userPB(it)
	}
	return out, nil
}

func (u userService) CreateUser(ctx context.Context, req *plazav1.CreateUserRequest) (*plazav1.CreateUserResponse, error) {
	created, err := u.s.opts.Users.Register(ctx, users.NewUser{Name: req.GetName(), Email: req.GetEmail(), Password: req.GetPassword(), Role: role(req.GetRole())})
	if err != nil {
		return nil, err
	}
	return &plazav1.CreateUserResponse{User: userPB(created)}, nil
}

// userPaths are what UpdateUser may change; "password" takes UpdateUserRequest.password.
var userPaths = []string{"name", "email", "role", "password"}

func (u userService) UpdateUser(ctx context.Context, req *plazav1.UpdateUserRequest) (*plazav1.UpdateUserResponse, error) {
	in := req.GetUser()
	if in == nil {
		in = &plazav1.User{}
	}
	// "*" replaces the user's fields; the password is no field of a user.
	fields, err := paths(req.GetUpdateMask(), userPaths, userPaths[:3], func(p string) bool {
		switch p {
		case "name":
			return in.GetName() != ""
		case "email":
			return in.GetEmail() != ""
		case "role":
			return in.GetRole() != plazav1.Role_ROLE_UNSPECIFIED
		}
		return req.GetPassword() != ""
	})
	if err != nil {
		return nil, err
	}
	var c users.Changes
	for _, p := range fields {
		switch p {
		case "name":
			c.Name = &in.Name
		case "email":
			c.Email = &in.Email
		case "role":
			r := role(in.GetRole())
			c.Role = &r
		case "password":
			c.Password = &req.Password
		}
	}
	if req.GetCurrentPassword() != "" {
		c.CurrentPassword = &req.CurrentPassword
	}
	updated, err := u.s.opts.Users.Patch(ctx, in.GetId(), expect(in.GetId(), in.GetEtag()), func(users.Editable) (users.Changes, error) { return c, nil })
	if err != nil {
		return nil, err
	}
	return &plazav1.UpdateUserResponse{User: userPB(updated)}, nil
}

func (u userService) DeleteUser(ctx context.Context, req *plazav1.DeleteUserRequest) (*plazav1.DeleteUserResponse, error) {
	if err := u.s.opts.Users.Delete(ctx, req.GetId(), expect(req.GetId(), req.GetEtag())); err != nil {
		return nil, err
	}
	return &plazav1.DeleteUserResponse{}, nil
}
