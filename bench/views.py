from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class FloorView(APIView):
    """The floor: a DRF view behind the same middleware that touches neither Redis nor the database.

    Cached endpoints are compared with it, so the comparison measures what the cache read costs
    on top of what any request costs in this stack.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response({"fromCache": False, "data": {"status": "ok"}})
