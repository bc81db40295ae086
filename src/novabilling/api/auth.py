"""/api/auth: public endpoints (contract auth.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from novabilling.auth import password_reset, schemas, service
from novabilling.kit.wire import MessageOut
from novabilling.web.deps import RuntimeDep
from novabilling.web.openapi import returns

router = APIRouter(prefix="/api/auth", tags=["auth"])

_FORGOT_MESSAGE = "If an account exists for that email, a password reset link has been sent"


@router.post(
    "/register",
    status_code=201,
    summary="Register a tenant (returns its API key and tokens)",
    responses=returns(schemas.RegisterOut, 201, errors={409: "Email already registered"}),
)
async def register(body: schemas.RegisterIn, runtime: RuntimeDep) -> dict[str, Any]:
    return await service.register(
        runtime,
        name=body.name,
        email=body.email,
        password=body.password,
        company_name=body.company_name,
    )


@router.post(
    "/login",
    status_code=200,
    summary="Log in with email and password",
    responses=returns(schemas.LoginOut, errors={401: "Invalid email or password"}),
)
async def login(body: schemas.LoginIn, runtime: RuntimeDep) -> dict[str, Any]:
    return await service.login(runtime, email=body.email, password=body.password)


@router.post(
    "/refresh",
    status_code=200,
    summary="Exchange a refresh token for new tokens",
    responses=returns(schemas.TokensOut, errors={401: "Invalid, expired or reused refresh token"}),
)
async def refresh(body: schemas.RefreshIn, runtime: RuntimeDep) -> dict[str, str]:
    return await service.refresh(runtime, refresh_token=body.refresh_token)


@router.post(
    "/forgot-password",
    status_code=200,
    summary="Request a password reset e-mail",
    responses=returns(MessageOut),
)
async def forgot_password(body: schemas.ForgotPasswordIn, runtime: RuntimeDep) -> dict[str, str]:
    await password_reset.request_reset(runtime, email=body.email)
    return {"message": _FORGOT_MESSAGE}


@router.post(
    "/reset-password",
    status_code=200,
    summary="Set a new password with a reset token",
    responses=returns(MessageOut),
)
async def reset_password(body: schemas.ResetPasswordIn, runtime: RuntimeDep) -> dict[str, str]:
    await service.reset_password(runtime, token=body.token, new_password=body.new_password)
    return {"message": "Password has been reset successfully"}
