from .ibr_service import BeneficiaryInfo, DuplicationResult, IBRService

__all__ = ["BeneficiaryInfo", "DuplicationResult", "IBRService"]
