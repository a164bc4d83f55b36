from rest_framework import serializers

from techbirdsfly.fields import StrictCharField

from .emails import email_problem


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")

    def validate_email(self, value: str) -> str:
        problem = email_problem(value)  # NFKC can lengthen what passed max_length many times over
        if problem:
            raise serializers.ValidationError(problem)
        return value


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()


class LoginSerializer(serializers.Serializer):
    email = StrictCharField(max_length=254)
    password = StrictCharField(max_length=128, trim_whitespace=False)


class PasswordChangeSerializer(serializers.Serializer):
    currentPassword = StrictCharField(max_length=128, trim_whitespace=False)
    newPassword = StrictCharField(max_length=128, trim_whitespace=False)


class RefreshSerializer(serializers.Serializer):
    refreshToken = StrictCharField(max_length=256)


class ValidateTokenSerializer(serializers.Serializer):
    token = StrictCharField(max_length=256, required=False)


class TokenPairSerializer(serializers.Serializer):
    accessToken = serializers.CharField(source="access_token")
    refreshToken = serializers.CharField(source="refresh_token")
    tokenType = serializers.SerializerMethodField()
    expiresIn = serializers.IntegerField(source="expires_in")

    def get_tokenType(self, pair) -> str:
        return "Bearer"


class ValidTokenSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    userId = serializers.IntegerField()
    email = serializers.EmailField()
    fromCache = serializers.BooleanField()


class ProfileSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()
    isStaff = serializers.BooleanField()
    dateJoined = serializers.DateTimeField()


class CachedProfileSerializer(serializers.Serializer):
    fromCache = serializers.BooleanField()
    data = ProfileSerializer()


class MessageSerializer(serializers.Serializer):
    message = serializers.CharField()
